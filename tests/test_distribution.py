"""Data-parallel training over devices, padding of short batches, and the streaming input pipeline."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.builders import REPO


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", **extra)


# --------------------------------------------------------------------------- distribution

def test_distribution_settings_on_this_machine():
    import keras

    from brainage.distribute import DistributionError, resolve_distribution

    backend = keras.backend.backend()
    auto = resolve_distribution("auto", backend)
    assert auto.kind in ("none", "data_parallel")
    if auto.kind == "none":  # a CPU or a single GPU
        assert auto.n_replicas == 1 and auto.per_replica_batch(7) == 7 and not auto.devices
    assert resolve_distribution(None, backend).kind == auto.kind
    assert resolve_distribution("none", backend).describe() == "one device"
    with pytest.raises(DistributionError, match="trainer.distribution='model_parallel'; expected one of auto"):
        resolve_distribution("model_parallel", backend)
    dp = resolve_distribution("data_parallel", backend)
    assert dp.kind == "data_parallel" and dp.n_replicas == len(dp.devices) >= 1


def test_global_batch_must_split_evenly():
    from brainage.distribute import Distribution, DistributionError

    two = Distribution("data_parallel", "jax", ["cpu:0", "cpu:1"])
    assert two.per_replica_batch(8) == 4
    with pytest.raises(DistributionError, match=r"trainer.batch_size=7 .* over 2 devices; use a "
                                                r"multiple of 2, e.g. trainer.batch_size=6"):
        two.per_replica_batch(7)


def test_short_batches_are_padded_with_zero_weights():
    from brainage.data.stream import VolumeSequence
    from brainage.distribute import Distribution

    volumes = np.arange(5 * 2 * 3 * 4, dtype=np.float32).reshape(5, 2, 3, 4)
    labels = np.array([0, 1, 2, 1, 0])
    seq = VolumeSequence(volumes, np.arange(5), labels, batch_size=4)
    three = Distribution("data_parallel", "tensorflow", ["a", "b", "c"])
    data, class_weight = three.batches(seq, {0: 2.0, 1: 1.0, 2: 0.5})
    assert class_weight is None and len(data) == 2
    x, y, w = data[0]
    assert x.shape == (6, 2, 3, 4, 1) and y.tolist() == [0, 1, 2, 1, 1, 1]
    np.testing.assert_array_equal(w, [2.0, 1.0, 0.5, 1.0, 0, 0])
    np.testing.assert_array_equal(x[4:], x[3:4].repeat(2, axis=0))
    x, y, w = data[1]
    assert x.shape[0] == 3 and w.tolist() == [2.0, 0, 0]
    plain, weights = Distribution("none", "jax").batches(seq, {0: 1.0})
    assert plain is seq and weights == {0: 1.0}
    inputs_only = three.batches(VolumeSequence(volumes, np.arange(5), None, batch_size=4))[0]
    assert len(inputs_only[1]) == 1 and inputs_only[1][0].shape[0] == 3
    data.set_epoch(3)
    assert seq.epoch == 3


DATA_PARALLEL_SCRIPT = textwrap.dedent("""
    import json, os, sys
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import pandas as pd
    from tests.builders import compose_train, tiny_data
    from brainage.train import train
    out = {}
    for dist in ["none", "data_parallel"]:
        cfg = compose_train("trainer.epochs=3", f"trainer.distribution={dist}")
        run = os.path.join(sys.argv[1], dist)
        metrics = train(cfg, run, data=tiny_data(n_per_bin=19))  # 9 test volumes: a short batch
        history = pd.read_csv(os.path.join(run, "history.csv"))
        out[dist] = {"loss": history["loss"].tolist(), "val_loss": history["val_loss"].tolist(),
                     "replicas": metrics["timings"]["replicas"], "test_n": metrics["test_n"],
                     "n_predictions": len(pd.read_csv(os.path.join(run, "test_predictions.csv")))}
    print("RESULT " + json.dumps(out))
""")


@pytest.mark.slow
@pytest.mark.parametrize("backend, rtol", [
    ("jax", 1e-3),         # one sharded global computation: the same numbers up to rounding
    ("tensorflow", 0.05),  # MirroredStrategy: batch-norm statistics per replica (2 volumes each)
])
def test_two_devices_follow_the_one_device_loss_curve(tmp_path, backend, rtol):
    pytest.importorskip(backend)
    env = _env(KERAS_BACKEND=backend)
    if backend == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    proc = subprocess.run([sys.executable, "-c", DATA_PARALLEL_SCRIPT, str(tmp_path)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    one, two = result["none"], result["data_parallel"]
    assert one["replicas"] == 1 and two["replicas"] == 2
    assert two["test_n"] == two["n_predictions"] == 9  # the padding's predictions are dropped
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=rtol)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=rtol)


# --------------------------------------------------------------------------- streaming

def test_measure_stream_reads_every_volume(tmp_path):
    from brainage.distribute import measure_stream, write_test_cache

    path = write_test_cache(tmp_path / "volumes.npy", 7, shape=(5, 6, 7))
    assert np.load(path, mmap_mode="r").shape == (7, 5, 6, 7)
    results = measure_stream(path, batch_size=3, workers=(1, 2))
    assert [r["workers"] for r in results] == [1, 2]
    assert all(r["volumes"] == 7 and r["volumes_per_s"] > 0 for r in results)


STREAM_SCRIPT = textwrap.dedent("""
    import json, sys
    from brainage.distribute import measure_stream, memory_status, peak_memory
    before = memory_status()
    with peak_memory() as peaks:
        results = measure_stream(sys.argv[1], batch_size=2, workers=(1, 2, 4))
    print("RESULT " + json.dumps({"before": before, "peaks": peaks, "results": results}))
""")


@pytest.mark.slow
def test_a_cache_larger_than_the_memory_bound_streams(tmp_path):
    """615 MB of float16 volumes read three times over while private memory stays under 400 MB.

    Private (anonymous) memory is what a process needs; the cache's pages that it maps count in
    its RSS too, but they are page cache, which the kernel drops and re-reads under pressure.
    """
    from brainage.distribute import write_test_cache

    path = Path(write_test_cache(tmp_path / "volumes.npy", 250))
    try:
        cache_mb = path.stat().st_size / 2**20
        assert cache_mb > 600
        # The allocator returns freed batch buffers to the system at once, so RssAnon measures the
        # data alive, not blocks glibc keeps for reuse.
        env = _env(KERAS_BACKEND="jax", MALLOC_MMAP_THRESHOLD_="1048576")
        proc = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, str(path)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, proc.stderr[-3000:]
        result = json.loads(lines[-1][len("RESULT "):])
    finally:
        path.unlink(missing_ok=True)
    assert [r["volumes"] for r in result["results"]] == [250, 250, 250]
    assert result["peaks"]["anon"] < 400 < cache_mb, result
    print(json.dumps(result))

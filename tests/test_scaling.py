"""Scaling out: data-parallel training, streaming caches, explain shards and their merge, sweeps."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from brainage.errors import ExplainError
from brainage.explain import explain, parse_shard, shard_batches
from tests.test_explain import compose_explain, train_run  # noqa: F401  (module-scoped fixture)

ROOT = Path(__file__).resolve().parents[1]
EXPLAIN = ["explainer=[dtd,gradient_x_input]", "subjects=all", "targets=[predicted,all]",
           "group.correct_only=false"]
TABLES = ["conservation.csv", "subjects.csv", "regions/custom_subjects.csv",
          "regions/custom_summary.csv"]


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", **extra)


def assert_same_explain_run(a: Path, b: Path, exact_rows=True):
    """Equal tables (up to row order unless ``exact_rows``) and numerically equal maps."""
    for name in TABLES:
        left = pd.read_csv(a / name, dtype={"subject_id": str})
        right = pd.read_csv(b / name, dtype={"subject_id": str})
        assert list(left.columns) == list(right.columns), name
        if not exact_rows:
            keys = [c for c in left.columns if left[c].dtype == object] + ["bin"] * ("bin" in left)
            left = left.sort_values(keys).reset_index(drop=True)
            right = right.sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(left, right, check_exact=False, rtol=1e-6, obj=name)
    groups = sorted(p.name for p in (a / "group").glob("*_mean.nii.gz"))
    assert groups and groups == sorted(p.name for p in (b / "group").glob("*_mean.nii.gz"))
    for name in groups:
        np.testing.assert_allclose(nib.load(b / "group" / name).get_fdata(),
                                   nib.load(a / "group" / name).get_fdata(), rtol=1e-6, atol=0)
    maps = sorted(p.name for p in (a / "maps").iterdir())
    assert maps == sorted(p.name for p in (b / "maps").iterdir())
    for name in maps[:4]:
        np.testing.assert_array_equal(nib.load(b / "maps" / name).get_fdata(),
                                      nib.load(a / "maps" / name).get_fdata())
    assert (b / "report.html").is_file() and (b / "explain.json").is_file()


# --------------------------------------------------------------------------- explain shards

@pytest.fixture(scope="module")
def single_job(train_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    explain(compose_explain(train_run, *EXPLAIN), out)
    return out


@pytest.fixture(scope="module")
def shards(train_run, tmp_path_factory):
    """Three shards of the single job's work, in a multirun-like directory 0/ 1/ 2/."""
    sweep = tmp_path_factory.mktemp("sweep")
    for i in range(3):
        explain(compose_explain(train_run, *EXPLAIN, f"shard={i}/3"), sweep / str(i))
    return sweep


def copy_shards(shards, dest: Path) -> Path:
    shutil.copytree(shards, dest)
    return dest


def test_parse_shard():
    assert parse_shard(None) is None and parse_shard("") is None
    assert parse_shard("0/1") == (0, 1) and parse_shard(" 3/4 ") == (3, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(ExplainError, match="expected i/n with 0 <= i < n"):
            parse_shard(bad)


@pytest.mark.parametrize("n_batches, n", [(6, 3), (7, 3), (5, 1), (2, 2)])
def test_shards_partition_the_batches(n_batches, n):
    parts = [shard_batches(n_batches, (i, n)) for i in range(n)]
    assert sorted(b for p in parts for b in p) == list(range(n_batches))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_a_shard_holds_its_part_and_no_report(shards, train_run):
    info = [json.loads((shards / str(i) / "shard.json").read_text()) for i in range(3)]
    assert [s["shard"] for s in info] == ["0/3", "1/3", "2/3"]
    assert [s["batches"] for s in info] == [[0, 3], [1, 4], [2, 5]]
    ids = [sid for s in info for sid in s["subject_ids"]]
    assert sorted(ids) == sorted(train_run["prep"].table["subject_id"]) and len(set(ids)) == len(ids)
    assert len({s["config_hash"] for s in info}) == 1
    one = shards / "0"
    for name in ("group_sums.npz", "subjects.csv", "conservation.csv", "regions.csv",
                 "config.yaml"):
        assert (one / "shard" / name).is_file(), name
    assert not (one / "report.html").exists() and not (one / "group").exists()
    assert len(list((one / "maps").iterdir())) == len(info[0]["subject_ids"]) * 2 * 4


def test_merged_shards_equal_the_single_job(single_job, shards, train_run, tmp_path):
    out = tmp_path / "merged"
    summary = explain(compose_explain(train_run, f"merge={shards}", "figures.subjects=1"), out)
    assert summary["shards"] == [str(shards / str(i)) for i in range(3)]
    assert_same_explain_run(single_job, out)
    single = json.loads((single_job / "explain.json").read_text())
    for key in ("n_subjects", "n_maps", "group_counts", "max_rel_error", "methods", "targets"):
        assert summary[key] == single[key], key
    html = (out / "report.html").read_text()
    assert all(p.relative_to(out).as_posix() in html for p in (out / "figures").glob("*.png"))


def test_merge_takes_a_list_of_shard_directories(single_job, shards, train_run, tmp_path):
    dirs = ",".join(str(shards / str(i)) for i in (2, 0, 1))
    explain(compose_explain(train_run, f"merge=[{dirs}]"), tmp_path / "merged")
    assert_same_explain_run(single_job, tmp_path / "merged")


def test_a_crashed_shard_is_named_and_can_be_rerun_alone(single_job, shards, train_run, tmp_path):
    sweep = copy_shards(shards, tmp_path / "sweep")
    crashed = sweep / "1"
    shutil.rmtree(crashed)
    (crashed / ".hydra").mkdir(parents=True)  # what Hydra leaves of a job that died
    OmegaConf.save(compose_explain(train_run, *EXPLAIN, "shard=1/3"), crashed / ".hydra" / "config.yaml")
    (crashed / ".hydra" / "overrides.yaml").write_text("- shard=1/3\n- subjects=all\n")
    (crashed / ".incomplete" / "maps").mkdir(parents=True)
    with pytest.raises(ExplainError) as err:
        explain(compose_explain(train_run, f"merge={sweep}"), tmp_path / "merged")
    message = str(err.value)
    assert "1 of 3 shards missing or incomplete" in message
    assert f"shard 1/3: {crashed} did not finish (no shard.json); rerun it alone" in message
    assert f"python -m brainage.explain shard=1/3 subjects=all hydra.run.dir={crashed}" in message
    assert not (tmp_path / "merged" / "report.html").exists()

    explain(compose_explain(train_run, *EXPLAIN, "shard=1/3"), crashed)  # the rerun, alone
    explain(compose_explain(train_run, f"merge={sweep}"), tmp_path / "merged")
    assert_same_explain_run(single_job, tmp_path / "merged")


def test_merge_refuses_a_missing_shard(shards, train_run, tmp_path):
    dirs = f"[{shards / '0'},{shards / '2'}]"
    with pytest.raises(ExplainError, match=r"shard 1/3: not found; run it with shard=1/3"):
        explain(compose_explain(train_run, f"merge={dirs}"), tmp_path / "merged")


def test_merge_refuses_mismatched_shards(shards, train_run, tmp_path):
    other = tmp_path / "other"
    explain(compose_explain(train_run, *EXPLAIN[:-1], "shard=1/3"), other)  # correct_only differs
    dirs = f"[{shards / '0'},{other},{shards / '2'}]"
    with pytest.raises(ExplainError, match=r"does not belong with .*: config_hash"):
        explain(compose_explain(train_run, f"merge={dirs}"), tmp_path / "merged")
    twice = f"[{shards / '0'},{shards / '1'},{shards / '1'},{shards / '2'}]"
    with pytest.raises(ExplainError, match="shard 1/3 is there twice"):
        explain(compose_explain(train_run, f"merge={twice}"), tmp_path / "merged")
    assert not (tmp_path / "merged" / "explain.json").exists()


def test_merge_refuses_shards_of_another_model(shards, train_run, tmp_path):
    sweep = copy_shards(shards, tmp_path / "sweep")
    info = json.loads((sweep / "2" / "shard.json").read_text())
    info["model_sha256"] = "0" * 64
    (sweep / "2" / "shard.json").write_text(json.dumps(info))
    with pytest.raises(ExplainError, match="model_sha256"):
        explain(compose_explain(train_run, f"merge={sweep}"), tmp_path / "merged")


def test_shard_errors(train_run, tmp_path):
    with pytest.raises(ExplainError, match=r"shard=5/6 has no subjects: .* make 2 batches"):
        explain(compose_explain(train_run, "shard=5/6"), tmp_path / "a")
    with pytest.raises(ExplainError, match="exclude each other"):
        explain(compose_explain(train_run, "shard=0/2", f"merge={tmp_path}"), tmp_path / "b")
    with pytest.raises(ExplainError, match="holds no explain shard"):
        explain(compose_explain(train_run, f"merge={tmp_path}"), tmp_path / "c")
    with pytest.raises(ExplainError, match="is not a directory"):
        explain(compose_explain(train_run, f"merge={tmp_path / 'missing'}"), tmp_path / "d")


# --------------------------------------------------------------------------- training sweeps

def fake_run(run: Path, overrides: list, accuracy=None, per_bin=(1.0, 0.5, 0.75)):
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), run / ".hydra" / "overrides.yaml")
    if accuracy is not None:
        (run / "metrics.json").write_text(json.dumps({
            "test_accuracy": accuracy, "test_balanced_accuracy": accuracy - 0.01,
            "test_per_bin_accuracy": list(per_bin), "test_n": 12, "best_epoch": 3,
            "epochs_run": 4, "stopped_early": False, "best_monitor_value": 0.7,
            "timings": {"train_seconds": 10.0, "train_volumes_per_s": 50.0, "replicas": 1}}))


def test_sweep_gathers_every_run_into_one_table(tmp_path):
    from brainage.sweep import main

    sweep = tmp_path / "multirun" / "train" / "2026-01-01_00-00-00"
    accuracies = {(1, "[4,8]"): 0.6, (2, "[4,8]"): 0.7, (1, "[8,16]"): 0.8, (2, "[8,16]"): None}
    for num, ((seed, widths), acc) in enumerate(accuracies.items()):
        fake_run(sweep / str(num), [f"seed={seed}", f"model.widths={widths}"], acc)
    (sweep / "10").mkdir()  # not a run: no .hydra, no metrics.json
    (sweep / ".submitit" / "0" / ".hydra").mkdir(parents=True)
    assert main([str(sweep)]) == 0

    runs = pd.read_csv(sweep / "sweep.csv", dtype={"run": str})
    assert list(runs["run"]) == ["0", "1", "2", "3"]
    assert list(runs.columns[:4]) == ["run", "status", "seed", "model.widths"]
    assert list(runs["status"]) == ["finished"] * 3 + ["unfinished"]
    assert runs["test_accuracy"].tolist()[:3] == [0.6, 0.7, 0.8]
    assert runs.loc[0, "test_acc_bin1"] == 0.5 and runs.loc[0, "train_seconds"] == 10.0
    summary = pd.read_csv(sweep / "sweep_summary.csv")
    assert list(summary["model.widths"]) == ["[4,8]", "[8,16]"]
    assert summary["n"].tolist() == [2, 1]
    assert summary.loc[0, "test_accuracy_mean"] == pytest.approx(0.65)
    assert summary.loc[0, "test_accuracy_sd"] == pytest.approx(np.std([0.6, 0.7], ddof=1))
    md = (sweep / "sweep.md").read_text()
    assert "3 of 4 runs finished" in md
    assert "| run | status | seed | model.widths | test_accuracy |" in md
    assert "| 3 | unfinished | 2 | [8,16] |" in md


def test_sweep_of_nothing_is_a_clear_error(tmp_path, capsys):
    from brainage.sweep import main

    assert main([str(tmp_path)]) == 2
    assert "no training runs under" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2


@pytest.mark.slow
def test_a_training_sweep_gives_one_directory_per_run_and_one_table(tmp_path):
    from brainage.sweep import gather
    from tests.test_train import TINY_MODEL, cohort_overrides, write_cohort

    root = write_cohort(tmp_path / "cohort")
    sweep = tmp_path / "multirun"
    proc = subprocess.run(
        [sys.executable, "-m", "brainage.train", "-m", *TINY_MODEL,
         *cohort_overrides(root, tmp_path / "cache"), "trainer.epochs=1", "seed=1,2",
         "model.widths=[2],[2,4]", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = gather(sweep)
    assert list(table["run"]) == ["0", "1", "2", "3"]
    assert (table["status"] == "finished").all()
    assert sorted(zip(table["seed"], table["model.widths"])) == [
        ("1", "[2,4]"), ("1", "[2]"), ("2", "[2,4]"), ("2", "[2]")]
    assert table["test_accuracy"].between(0, 1).all()


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
    from tests.test_train import compose_train, tiny_data
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
    proc = subprocess.run([sys.executable, "-c", DATA_PARALLEL_SCRIPT, str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    one, two = result["none"], result["data_parallel"]
    assert one["replicas"] == 1 and two["replicas"] == 2
    assert two["test_n"] == two["n_predictions"] == 9  # the padding's predictions are dropped
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=rtol)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=rtol)


# --------------------------------------------------------------------------- launchers

# Our launcher files share the plugin's schema names, so Hydra validates them against it (and says so).
SCHEMA_MATCHING = pytest.mark.filterwarnings(r"ignore:\s*'hydra/launcher/submitit_\w+' is validated")


def compose_with_hydra(config_name, *overrides):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(config_name, overrides=list(overrides), return_hydra_config=True)


@SCHEMA_MATCHING
def test_slurm_launcher_config_makes_a_valid_sbatch_script(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cfg = compose_with_hydra("explain", "hydra/launcher=submitit_slurm",
                             "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path}",
                             "hydra.job.name=explain")
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    # What SlurmLauncher.launch hands to submitit, without a cluster (submitit looks for srun).
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    params = dict(launcher.params)
    executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="slurm",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python job.py", "0")
    for line in ("--gpus-per-node=1", "--cpus-per-task=8", "--mem=32GB", "--time=240",
                 "--partition=gpu", "--ntasks-per-node=1", "--job-name=explain"):
        assert f"#SBATCH {line}" in script, line


@SCHEMA_MATCHING
@pytest.mark.parametrize("config_name", ["train", "explain"])
def test_local_launcher_config_composes_for_every_stage(config_name, tmp_path):
    pytest.importorskip("submitit")
    cfg = compose_with_hydra(config_name, "hydra/launcher=submitit_local",
                             f"hydra.sweep.dir={tmp_path}")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.LocalLauncher")
    assert launcher.gpus_per_node == 0 and launcher.timeout_min > 0
    assert OmegaConf.select(compose_with_hydra("train"), "trainer.distribution") == "auto"


@pytest.mark.slow
def test_a_two_shard_multirun_on_submitit_local_merges_to_the_single_job(
        single_job, train_run, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    common = [f"train_dir={train_run['run']}", "atlas=custom", f"atlas.path={train_run['atlas']}",
              f"atlas.labels={train_run['labels']}", "progress=false", "figures.subjects=1", *EXPLAIN]
    sweep = tmp_path / "multirun"
    run = subprocess.run([sys.executable, "-m", "brainage.explain", "-m",
                          "hydra/launcher=submitit_local", "shard=0/2,1/2", *common,
                          f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert sorted(json.loads((sweep / n / "shard.json").read_text())["shard"]
                  for n in ("0", "1")) == ["0/2", "1/2"]
    assert (sweep / ".submitit").is_dir()
    merged = tmp_path / "merged"
    run = subprocess.run([sys.executable, "-m", "brainage.explain", f"merge={sweep}",
                          "figures.subjects=1", f"hydra.run.dir={merged}"], cwd=tmp_path,
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"{merged}/report.html" in run.stdout
    assert_same_explain_run(single_job, merged)


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
        proc = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, str(path)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, proc.stderr[-3000:]
        result = json.loads(lines[-1][len("RESULT "):])
    finally:
        path.unlink(missing_ok=True)
    assert [r["volumes"] for r in result["results"]] == [250, 250, 250]
    assert result["peaks"]["anon"] < 400 < cache_mb, result
    print(json.dumps(result))

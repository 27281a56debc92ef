"""bench peer=zennit end to end, in fresh processes (Zennit must be imported before TensorFlow):
the same tiny network in Keras and PyTorch, maps that agree, times and ratios in every row."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from brainage.benchmark.zennit_peer import agreement
from tests.builders import REPO

TINY = ["shape=[20,22,19]", "model.widths=[2,4]", "model.dense_units=8", "repeats=1", "train=false",
        "methods=[dtd]"]
PEER_KEYS = {"zennit_dtd_ms", "zennit_lrp_composite_ms", "torch_gradient_ms", "torch_forward_ms",
             "zennit_speedup", "zennit_lrp_composite_speedup", "torch_gradient_speedup",
             "torch_forward_speedup", "zennit_dtd_rel_l1", "zennit_lrp_composite_rel_l1",
             "zennit_dtd_max_rel_error", "zennit_lrp_composite_max_rel_error"}

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def zennit_installed(peer_extra):
    peer_extra("torch")
    peer_extra("zennit")


def run_peer_bench(tmp_path, *overrides) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("KERAS_BACKEND", None)
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "brainage.bench", "peer=zennit", *overrides,
                           f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((run_dir / "bench.json").read_text())
    results["markdown"] = (run_dir / "bench.md").read_text()
    return results


def test_tiny_random_network_agrees_with_zennit_and_rows_carry_the_ratios(tmp_path):
    results = run_peer_bench(tmp_path, *TINY, "batch_sizes=[2]")
    assert results["methods"] == ["gradient", "dtd", "lrp_composite"]  # the peer's methods are timed
    assert results["peer"]["zennit"] == "0.5.1" and results["peer"]["torch_threads"] == results["threads"]
    for row in results["rows"]:
        assert PEER_KEYS <= set(row)
        assert row["zennit_speedup"] == pytest.approx(row["zennit_dtd_ms"] / row["dtd_ms"])
        # random biases and BatchNormalization statistics; γ on block1_conv_b, ε on block 2
        assert row["zennit_dtd_rel_l1"] <= 1e-4 and row["zennit_lrp_composite_rel_l1"] <= 1e-4
        assert row["zennit_dtd_max_rel_error"] < 1e-5 and row["dtd_max_rel_error"] < 1e-5
    assert agreement(results["rows"], 1e-4) == ([], [])
    assert "| batch | DTD ours | DTD Zennit | Zennit ÷ ours |" in results["markdown"]


def test_saved_model_agrees_to_1e_4_for_dtd_and_the_lrp_composite(tmp_path):
    import keras

    from brainage.model import build_model

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    model = build_model((20, 22, 19), widths=(2, 4), dense_units=8)
    for layer in model.layers:  # random biases; BatchNormalization as initialised, so that the
        if getattr(layer, "use_bias", False):  # γ rule's denominators stay away from zero
            layer.bias.assign(rng.uniform(-0.05, 0.05, tuple(layer.bias.shape)).astype("float32"))
    model.save(tmp_path / "model.keras")
    results = run_peer_bench(tmp_path, *TINY, "batch_sizes=[3]", f"model_path={tmp_path / 'model.keras'}")
    (row,) = results["rows"]
    assert results["weights"] == "trained" and results["input_shape"] == [20, 22, 19, 1]
    assert row["zennit_dtd_rel_l1"] <= 1e-4 and row["zennit_lrp_composite_rel_l1"] <= 1e-4
    assert "zennit_lrp_composite_float32_error" not in row  # agreement needed no allowance

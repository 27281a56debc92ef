"""benchmarks/innvestigate/ours.py, the half of the iNNvestigate comparison that runs in our
environment: it exports a network that run.py's rebuild turns back into the same logits."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.builders import REPO

SCRIPTS = REPO / "benchmarks" / "innvestigate"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"innvestigate_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_export_rebuilds_to_the_same_logits_and_times_ours(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "ours.py"), str(tmp_path), "shape=[20,22,19]", "model.widths=[2,4]",
         "model.dense_units=8", "--batch-sizes", "2", "--repeats", "1"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    ours = json.loads((tmp_path / "ours.json").read_text())
    assert [layer["class"] for layer in ours["layers"][:5]] == [
        "Conv3D", "Conv3D", "BatchNormalization", "ReLU", "AveragePooling3D"]
    (row,) = ours["rows"]
    assert row["batch"] == 2 and set(row["times_ms"]) == {"dtd", "gradient", "forward"}
    assert row["max_rel_error"] < 1e-5 and ours["weights"] == "random"
    # run.py rebuilds with tf.keras 2.14; Keras 3 accepts the same layer arguments
    model = load_script("run").rebuild(ours["layers"], ours["input_shape"], np.load(tmp_path / "network.npz"))
    batch = np.load(tmp_path / "batch2.npz")
    logits = np.asarray(model(batch["x"], training=False))
    np.testing.assert_allclose(logits.max(axis=1), batch["outputs"], rtol=1e-4, atol=1e-6)

"""The bench stage: a tiny run end to end, the backend chosen before Keras is imported, the CLI."""
import json
import os
import subprocess
import sys

import pytest

from brainage.bench import bench
from brainage.errors import BrainageError
from tests.builders import REPO, compose_stage

# A two-block network on the training tests' grid: a run takes seconds.
TINY = ["shape=[20,22,19]", "model.widths=[2,4]", "model.dense_units=8", "repeats=1"]


def run_cli(*overrides, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("KERAS_BACKEND", None)
    return subprocess.run([sys.executable, "-m", "brainage.bench", *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_tiny_bench_writes_json_and_markdown_rows(tmp_path, restored_environment):
    cfg = compose_stage("bench", *TINY, "batch_sizes=[1,2]", "methods=[dtd]")
    results = bench(cfg, tmp_path)
    assert json.loads((tmp_path / "bench.json").read_text()) == results
    assert results["methods"] == ["gradient", "dtd"]  # gradient and DTD are always timed
    assert results["input_shape"] == [20, 22, 19, 1] and results["device"] == "cpu"
    assert [row["batch"] for row in results["rows"]] == [1, 2]
    for row in results["rows"]:
        assert set(row) == {"batch", "forward_ms", "forward_min_ms", "gradient_ms", "gradient_min_ms",
                            "dtd_ms", "dtd_min_ms", "forward_cpu_ms", "gradient_cpu_ms", "dtd_cpu_ms",
                            "dtd_over_gradient", "dtd_over_forward", "dtd_over_forward_cpu",
                            "dtd_max_rel_error", "dtd_max_trace_rel_error", "train_ms",
                            "train_volumes_per_s", "peak_rss_mb"}
        assert row["dtd_over_gradient"] == pytest.approx(row["dtd_ms"] / row["gradient_ms"])
        assert row["dtd_over_forward"] == pytest.approx(row["dtd_ms"] / row["forward_ms"])
        assert row["dtd_max_rel_error"] < 1e-5 and row["train_volumes_per_s"] > 0
    assert results["weights"] == "random" and results["peer"] is None and results["threads"] >= 1
    table = (tmp_path / "bench.md").read_text().splitlines()
    assert table[2].startswith("| batch | forward | gradient | dtd | DTD ÷ gradient | DTD ÷ forward |")
    assert [line.split(" | ")[0] for line in table[4:]] == ["| 1", "| 2"]


def test_stage_refuses_a_backend_other_than_the_one_keras_runs(tmp_path, restored_environment):
    import keras

    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    with pytest.raises(BrainageError, match=f"backend={other} requested"):
        bench(compose_stage("bench", *TINY, f"backend={other}"), tmp_path)


def test_importing_the_stage_leaves_keras_and_backends_unimported():
    code = ("import sys, brainage.bench, brainage.benchmark.suite; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch', 'zennit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_peer_in_a_process_already_running_tensorflow_is_refused_not_crashed(tmp_path, restored_environment):
    # Zennit's torchvision loads triton, which crashes a process that loaded TensorFlow first
    import tensorflow  # noqa: F401  (the test process runs it already; say so)

    with pytest.raises(BrainageError, match="start a fresh process"):
        bench(compose_stage("bench", *TINY, "peer=zennit"), tmp_path)
    assert not (tmp_path / "bench.json").exists()


@pytest.mark.slow
@pytest.mark.needs_jax
def test_cli_backend_override_takes_effect_before_keras_is_imported(tmp_path):
    # A fresh process: backend=jax must reach KERAS_BACKEND before Keras starts (the test process
    # runs TensorFlow); the run lands in Hydra's outputs/bench/<date>_<time>/.
    done = run_cli(*TINY, "backend=jax", "batch_sizes=[1]", "methods=[dtd]", "train=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = (tmp_path / "outputs" / "bench").iterdir()
    results = json.loads((run_dir / "bench.json").read_text())
    assert results["backend"] == "jax" and results["rows"][0]["dtd_max_rel_error"] < 1e-5
    assert (run_dir / "bench.md").read_text().startswith("Backend jax, device cpu")

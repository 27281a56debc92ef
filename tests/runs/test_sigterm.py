"""SIGTERM (a SLURM time limit, ``timeout``) stops every stage as Ctrl-C does: ``run.json`` says
interrupted, the process exits 143 with one line saying how to go on, and training keeps the
checkpoint that ``trainer.resume`` continues from."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from brainage.runs import read_record
from brainage.training.checkpoint import CHECKPOINT_DIR, STATE_FILE
from tests.builders import REPO, TINY_MODEL, cohort_overrides, write_cohort

# Each stage module and the work function its entry hands to run_stage.
STAGES = {"train": "train", "explain": "explain", "evaluate": "evaluate", "infer": "infer",
          "predict": "predict", "bench": "bench", "seed_digits": "run_digits", "sweep": "sweep",
          "distribute": "distribute", "cohort": "cohort", "seed_unet": "run_unet"}

# The stage's work becomes a wait, so that the signal lands inside the run for every stage (the
# work itself is each stage's own tests' matter); the entry, Hydra and run_stage are the real ones.
HELD = """
import importlib, sys, time
module = importlib.import_module("brainage." + sys.argv.pop(1))
setattr(module, sys.argv.pop(1), lambda *args, **kwargs: time.sleep(300))
module._main.__module__ = "__main__"  # Hydra then finds configs/ and names the job as under -m
module.main()
"""
ENV = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", TQDM_DISABLE="1")


def _wait_until_running(proc, run_dir) -> None:
    while True:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        if (run_dir / "run.json").exists() and read_record(run_dir).state == "running":
            return
        time.sleep(0.05)


def _terminate(proc, run_dir) -> tuple[int, str]:
    """SIGTERM once ``run.json`` says running; the exit status and stderr."""
    try:
        _wait_until_running(proc, run_dir)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=120), proc.communicate()[1]
    finally:
        proc.kill()


def _assert_interrupted(run_dir, status: int, err: str) -> None:
    record = read_record(run_dir)
    assert status == 143, err[-3000:]
    assert record.state == "interrupted" and record.error == "SIGTERM"
    assert err.strip().splitlines()[-1].startswith(f"interrupted: {run_dir} is marked interrupted")
    assert "Traceback" not in err


@pytest.mark.parametrize("stage", list(STAGES))
def test_sigterm_marks_the_run_interrupted(stage, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HELD, stage, STAGES[stage],
                             f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    status, err = _terminate(proc, run_dir)
    _assert_interrupted(run_dir, status, err)
    assert read_record(run_dir).stage == stage


@pytest.mark.slow
def test_training_stopped_by_sigterm_keeps_its_checkpoint_and_resumes(tmp_path):
    root = write_cohort(tmp_path / "cohort")
    overrides = [*TINY_MODEL, "trainer.epochs=12", "seed=3",
                 *cohort_overrides(root, tmp_path / "cache")]
    run_dir = tmp_path / "outputs" / "train" / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "brainage.train", *overrides,
                             f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = run_dir / CHECKPOINT_DIR / STATE_FILE
    try:
        while not state.exists():  # the first epoch's checkpoint: now there is one to keep
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        status, err = proc.wait(timeout=300), proc.communicate()[1]
    finally:
        proc.kill()
    _assert_interrupted(run_dir, status, err)
    assert f"continue it with python -m brainage.train trainer.resume={run_dir}" in err
    epochs_done = len(json.loads(state.read_text())["history"])
    assert 1 <= epochs_done < 12
    resumed = subprocess.run([sys.executable, "-m", "brainage.train", f"trainer.resume={run_dir}"],
                             cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = read_record(run_dir)
    assert record.state == "finished" and len(record.resumed) == 1
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 12

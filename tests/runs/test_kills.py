"""Runs stopped at random (seeded) points by SIGINT (Ctrl-C) or SIGKILL never look finished, and
continuing them gives the result of a run that was never stopped.

Training is continued with ``trainer.resume=<run>``, in its own directory; an explain run is
run again into a new directory (the stopped one is refused). Each case starts the command line
as a user does and sends the signal at a seeded delay after the run has started.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.runs import is_finished, latest_run, read_record
from tests.builders import REPO, TINY_MODEL, assert_same_table, cohort_overrides, write_cohort

pytestmark = pytest.mark.slow

TRAIN = [*TINY_MODEL, "trainer.epochs=4", "seed=3", "trainer.augment.enabled=true",
         "trainer.augment.max_shift=1", "trainer.lr_schedule=plateau", "trainer.plateau_patience=1"]
SAME = ("test_accuracy", "confusion_matrix", "best_epoch", "epochs_run", "best_monitor_value")
TRAIN_KILLS = [("SIGINT", 1), ("SIGKILL", 2), ("SIGINT", 3), ("SIGKILL", 4)]
EXPLAIN_KILLS = [("SIGINT", 5), ("SIGKILL", 6)]


def _interruptible():
    # A shell runs background jobs with SIGINT ignored, which Python would inherit; a user's
    # Ctrl-C reaches a process that has the default handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(stage, overrides, run_dir, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", TQDM_DISABLE="1")
    return subprocess.Popen([sys.executable, "-m", f"brainage.{stage}", *overrides,
                             f"hydra.run.dir={run_dir}"], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_interruptible)


def _timed(stage, overrides, run_dir, cwd, marker):
    """Run to the end; returns the seconds from the run's start (run.json) until ``marker``
    was written (the span a stop can fall in)."""
    proc = _start(stage, overrides, run_dir, cwd)
    started = _wait_for_start(proc, run_dir)
    while proc.poll() is None and not (run_dir / marker).exists():
        time.sleep(0.05)
    seconds = time.monotonic() - started
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return seconds


def _wait_for_start(proc, run_dir) -> float:
    while not (run_dir / "run.json").exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    return time.monotonic()


def _stop(stage, overrides, run_dir, cwd, signal_name, seed, duration):
    """Start a run and send it ``signal_name`` at a seeded point of its expected duration."""
    proc = _start(stage, overrides, run_dir, cwd)
    _wait_for_start(proc, run_dir)
    time.sleep(random.Random(seed).uniform(0.05, 0.95) * duration)
    proc.send_signal(getattr(signal, signal_name))
    out, err = proc.communicate(timeout=900)
    return proc.returncode, err


def _check_stopped(run_dir, status, err, signal_name, marker):
    """A stopped run: the right status and message, and nothing says it finished."""
    record = read_record(run_dir)
    if record.state == "finished":  # the signal came after the end: complete, as it says
        assert status in (0, 130, -signal.SIGKILL)
        return False
    assert record.state != "finished" and not is_finished(run_dir, marker)
    assert "Traceback" not in err
    if signal_name == "SIGINT":
        assert status == 130 and record.state == "interrupted"
        assert err.strip().splitlines()[-1].startswith(f"interrupted: {run_dir} is marked "
                                                       "interrupted")
    else:
        assert status == -signal.SIGKILL and record.state == "running" and not record.alive()
    return True


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    base = tmp_path_factory.mktemp("kills")
    root = write_cohort(base / "cohort")
    overrides = [*TRAIN, *cohort_overrides(root, base / "cache")]
    straight = base / "outputs" / "train" / "straight"
    duration = _timed("train", overrides, straight, base, "metrics.json")
    return base, overrides, straight, duration


def _weights(path):
    import keras

    return keras.saving.load_model(path).get_weights()


@pytest.mark.parametrize("signal_name, seed", TRAIN_KILLS)
def test_a_stopped_training_run_resumes_to_the_uninterrupted_result(training, signal_name, seed):
    base, overrides, straight, duration = training
    run_dir = base / "outputs" / "train" / f"stopped-{seed}"
    status, err = _stop("train", overrides, run_dir, base, signal_name, seed, duration)
    if _check_stopped(run_dir, status, err, signal_name, "model.keras"):
        assert latest_run("train", base / "outputs") != run_dir
        if signal_name == "SIGINT":
            assert f"continue it with python -m brainage.train trainer.resume={run_dir}" in err
        before = sorted((base / "outputs" / "train").iterdir())
        resumed = subprocess.run(
            [sys.executable, "-m", "brainage.train", f"trainer.resume={run_dir}"], cwd=base,
            env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3",
                     TQDM_DISABLE="1"), capture_output=True, text=True, timeout=900)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert sorted((base / "outputs" / "train").iterdir()) == before  # no new directory
        record = read_record(run_dir)
        assert record.state == "finished" and len(record.resumed) == 1
        assert "resuming" in (run_dir / "train.log").read_text()
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    for key in SAME:
        assert a[key] == (pytest.approx(b[key], rel=1e-6) if isinstance(b[key], float)
                          else b[key]), key
    pd.testing.assert_frame_equal(pd.read_csv(straight / "history.csv").drop(columns="seconds"),
                                  pd.read_csv(run_dir / "history.csv").drop(columns="seconds"),
                                  rtol=1e-6)
    for w1, w2 in zip(_weights(straight / "model.keras"), _weights(run_dir / "model.keras")):
        np.testing.assert_allclose(w1, w2, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def explaining(train_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("explain_kills")
    overrides = [f"train_dir={train_run['run']}", "atlas=custom",
                 f"atlas.path={train_run['atlas']}", f"atlas.labels={train_run['labels']}",
                 "progress=false", "subjects=all", "explainer=[dtd,gradient_x_input]",
                 "targets=[predicted,all]", "figures.subjects=2"]
    straight = base / "outputs" / "explain" / "straight"
    duration = _timed("explain", overrides, straight, base, "explain.json")
    return base, overrides, straight, duration


def _same_explanations(a, b):
    maps = sorted(p.name for p in (a / "maps").iterdir())
    assert maps == sorted(p.name for p in (b / "maps").iterdir())
    for name in maps:
        np.testing.assert_array_equal(nib.load(a / "maps" / name).get_fdata(),
                                      nib.load(b / "maps" / name).get_fdata())
    for table in ["conservation.csv", *(f"regions/{p.name}" for p in (a / "regions").iterdir())]:
        assert_same_table(pd.read_csv(a / table), pd.read_csv(b / table), table, rtol=1e-5)


@pytest.mark.parametrize("signal_name, seed", EXPLAIN_KILLS)
def test_a_stopped_explain_run_never_looks_finished_and_a_rerun_gives_the_same_maps(
        explaining, signal_name, seed):
    base, overrides, straight, duration = explaining
    run_dir = base / "outputs" / "explain" / f"stopped-{seed}"
    status, err = _stop("explain", overrides, run_dir, base, signal_name, seed, duration)
    if _check_stopped(run_dir, status, err, signal_name, "explain.json"):
        assert latest_run("explain", base / "outputs", required="explain.json") != run_dir
        again = subprocess.run([sys.executable, "-m", "brainage.explain", *overrides,
                                f"hydra.run.dir={run_dir}"], cwd=base, capture_output=True,
                               text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert again.returncode == 2 and "already holds an earlier explain run" in again.stderr
        rerun = base / "outputs" / "explain" / f"rerun-{seed}"
        _timed("explain", overrides, rerun, base, "explain.json")
        _same_explanations(straight, rerun)
    else:
        _same_explanations(straight, run_dir)

"""Gathering a training sweep (Hydra multirun) into one table."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from tests.builders import REPO


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", **extra)


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
    from tests.builders import TINY_MODEL, cohort_overrides, write_cohort

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

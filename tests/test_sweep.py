"""The sweep stage: Hydra command line (new and earlier forms), errors, and a real training sweep."""
import os
import subprocess
import sys

import pandas as pd
import pytest

from brainage.errors import TrainError
from brainage.sweep import sweep
from brainage.training.sweeps import gather
from tests.builders import REPO, TINY_MODEL, cohort_overrides, compose_stage, write_cohort
from tests.training.builders import fake_sweep


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", **extra)


def _cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "brainage.sweep", *args,
                           f"hydra.run.dir={tmp_path / 'sweep_stage'}"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)


def test_sweep_stage_writes_the_tables_next_to_the_sweep(tmp_path, capsys):
    sweep_dir = fake_sweep(tmp_path / "multirun" / "train" / "2026-01-01_00-00-00")
    paths = sweep(compose_stage("sweep", f"sweep_dir={sweep_dir}"), tmp_path / "stage")
    assert paths["runs"] == str(sweep_dir / "sweep.csv")
    assert pd.read_csv(paths["summary"])["n"].tolist() == [2, 1]
    assert "3 of 4 runs finished" in capsys.readouterr().out


def test_sweep_stage_needs_a_sweep_dir(tmp_path):
    with pytest.raises(TrainError, match="sweep_dir is required"):
        sweep(compose_stage("sweep"), tmp_path)
    with pytest.raises(TrainError, match="no training runs under"):
        sweep(compose_stage("sweep", f"sweep_dir={tmp_path}"), tmp_path)


@pytest.mark.slow
def test_cli_takes_the_earlier_positional_form(tmp_path):
    sweep_dir = fake_sweep(tmp_path / "multirun" / "train" / "2026-01-01_00-00-00")
    result = _cli(tmp_path, str(sweep_dir), "--out", str(tmp_path / "tables"), "--over", "seed")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 of 4 runs finished" in result.stdout
    assert (tmp_path / "tables" / "sweep_summary.csv").is_file()
    assert not (sweep_dir / "sweep.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("args", [[], ["missing"]])  # no sweep_dir; the earlier form, no dir
def test_cli_error_is_one_line_and_status_2(tmp_path, args):
    result = _cli(tmp_path, *args)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_training_sweep_gives_one_directory_per_run_and_one_table(tmp_path):
    root = write_cohort(tmp_path / "cohort")
    sweep_dir = tmp_path / "multirun"
    proc = subprocess.run(
        [sys.executable, "-m", "brainage.train", "-m", *TINY_MODEL,
         *cohort_overrides(root, tmp_path / "cache"), "trainer.epochs=1", "seed=1,2",
         "model.widths=[2],[2,4]", f"hydra.sweep.dir={sweep_dir}"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = gather(sweep_dir)
    assert list(table["run"]) == ["0", "1", "2", "3"]
    assert (table["status"] == "finished").all()
    assert sorted(zip(table["seed"], table["model.widths"])) == [
        ("1", "[2,4]"), ("1", "[2]"), ("2", "[2,4]"), ("2", "[2]")]
    assert table["test_accuracy"].between(0, 1).all()

"""The cohort stage (python -m brainage.cohort): generate, reuse or refuse a cohort, and draw it."""
import json
import os
import subprocess
import sys

import pytest

from brainage.cohort import cohort
from brainage.data import synthetic as sy
from brainage.errors import DataError, RunDirError
from tests.builders import REPO, compose_stage
from tests.data.synthetic.cohort_files import oblique_grid


def _compose(root, *overrides):
    return compose_stage("cohort", f"data.root={root}", "data.n_subjects=4",
                         "data.synthetic.workers=1", "progress=false", *overrides)


def _cli(cwd, *overrides):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "brainage.cohort", *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_config_composes_with_the_data_group():
    cfg = compose_stage("cohort", "data.n_subjects=60")
    assert cfg.stage == "cohort" and cfg.data.name == "synthetic"
    assert cfg.data.root == "data/synthetic/pac2019_n60_seed0" and cfg.data.synthetic.workers is None


@pytest.mark.slow
def test_generates_then_reuses_and_never_overwrites_a_run(tmp_path):
    grid = oblique_grid()
    cfg = _compose(tmp_path / "cohort")
    summary = cohort(cfg, tmp_path / "run1", grid=grid)
    assert summary["reused"] is False and summary["workers"] == 1 and summary["n_subjects"] == 4
    assert sy.read_cohort_record(tmp_path / "cohort")["n_subjects"] == 4
    assert (tmp_path / "run1" / "cohort.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "run1" / "summary.json").read_text()) == summary

    again = cohort(cfg, tmp_path / "run2", grid=grid)
    assert again["reused"] is True and again["root"] == summary["root"]
    with pytest.raises(RunDirError, match="summary.json"):
        cohort(cfg, tmp_path / "run1", grid=grid)
    with pytest.raises(DataError, match=r"n_subjects: 4 there, 5 asked"):
        cohort(_compose(tmp_path / "cohort", "data.n_subjects=5"), tmp_path / "run3", grid=grid)
    assert not (tmp_path / "run3" / "summary.json").exists()


def test_bad_setting_is_named(tmp_path):
    with pytest.raises(DataError, match=r"data\.synthetic\.workers=-1"):
        cohort(_compose(tmp_path / "c", "data.synthetic.workers=-1"), tmp_path / "run")
    with pytest.raises(DataError, match=r"cohort\.progress='sometimes'; expected true or false"):
        cohort(_compose(tmp_path / "c", "progress=sometimes"), tmp_path / "run")


@pytest.mark.slow
def test_cli_refusal_is_one_line_and_status_2(tmp_path):
    # A cohort on the small grid: the command line asks for the 1.5 mm MNI grid, so it is refused
    # before anything is generated.
    sy.generate_cohort(tmp_path / "small", 2, grid=oblique_grid(), n_jobs=1, progress=False)
    result = _cli(tmp_path, f"data.root={tmp_path / 'small'}", "data.n_subjects=2",
                  f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: " in result.stderr and "different synthetic cohort" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.slow
def test_cli_generates_on_the_mni_grid(tmp_path):
    result = _cli(tmp_path, f"data.root={tmp_path / 'c'}", "data.n_subjects=2", "progress=false",
                  f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 subjects, generated" in result.stdout
    assert (tmp_path / "run" / "cohort.png").is_file()
    record = sy.read_cohort_record(tmp_path / "c")
    assert record["grid"]["shape"] == [121, 145, 121] and record["n_subjects"] == 2

"""Run directories: run.json states, the newest finished run, refusing used directories, run_stage."""
import json
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from brainage.config_values import given_overrides
from brainage.errors import BrainageError, DataError, RunDirError
from brainage.runs import (
    RunRecord,
    check_unused_run_dir,
    is_finished,
    latest_run,
    quote_path_templates,
    read_record,
    run_stage,
    unfinished_reason,
)
from brainage.runs.continue_in_place import ContinueInPlace
from tests.builders import REPO

CFG = OmegaConf.create({"x": 1})


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def _run(path, state, marker="model.keras", **fields):
    path.mkdir(parents=True)
    (path / marker).write_text("x")
    record = RunRecord("train", **fields)
    if state != "running":
        record.end(path, state, "boom" if state == "failed" else None)
    else:
        record.save(path)
    return path


def _hashes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# --------------------------------------------------------------------------- run.json

def test_a_record_round_trips_and_says_whether_its_process_lives(tmp_path):
    record = RunRecord("train", continue_with="python -m brainage.train trainer.resume=x")
    record.save(tmp_path)
    again = read_record(tmp_path)
    assert again == record and again.state == "running" and again.alive()
    assert not list(tmp_path.glob(".run.json.tmp"))
    again.pid = _dead_pid()
    assert not again.alive()
    assert again.describe() == "stopped without finishing (killed while running)"
    again.end(tmp_path, "failed", "bad table")
    assert read_record(tmp_path).describe() == "failed (bad table)"
    assert read_record(tmp_path).ended is not None


def test_finished_means_run_json_says_so_or_an_old_run_holds_its_marker(tmp_path):
    assert is_finished(_run(tmp_path / "done", "finished"), "model.keras")
    for state in ("running", "failed", "interrupted"):
        assert not is_finished(_run(tmp_path / state, state), "model.keras"), state
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "model.keras").write_text("x")
    assert is_finished(legacy, "model.keras") and unfinished_reason(legacy) is None
    (legacy / "run.json").write_text("{not json")
    assert not is_finished(legacy, "model.keras")
    assert unfinished_reason(tmp_path / "failed") == "failed (boom)"


def test_latest_run_skips_every_run_that_did_not_finish(tmp_path):
    base = tmp_path / "outputs" / "train"
    _run(base / "2024-01-01_00-00-00", "finished")
    legacy = base / "2024-01-02_00-00-00"
    legacy.mkdir()
    (legacy / "model.keras").write_text("x")
    _run(base / "2024-01-03_00-00-00", "failed")
    _run(base / "2024-01-04_00-00-00", "running", pid=_dead_pid())
    _run(base / "2024-01-05_00-00-00", "interrupted")
    assert latest_run("train", tmp_path / "outputs") == legacy
    for run in sorted(base.iterdir())[:2]:
        (run / "model.keras").unlink()
    with pytest.raises(FileNotFoundError, match=r"\(4 unfinished or failed run\(s\) skipped\)"):
        latest_run("train", tmp_path / "outputs")


# --------------------------------------------------------------------------- refusing directories

def test_a_used_directory_is_refused_naming_the_run_and_how_to_continue_it(tmp_path):
    check_unused_run_dir(tmp_path / "new")
    (tmp_path / "unrelated").mkdir()
    (tmp_path / "unrelated" / "notes.txt").write_text("mine")
    check_unused_run_dir(tmp_path / "unrelated")
    hint = "python -m brainage.train trainer.resume=x"
    _run(tmp_path / "stopped", "interrupted", continue_with=hint)
    with pytest.raises(RunDirError, match=f"an earlier train run, interrupted; continue it with {hint}"):
        check_unused_run_dir(tmp_path / "stopped")
    _run(tmp_path / "done", "finished", continue_with=hint)
    with pytest.raises(RunDirError, match=r"train run, finished; a run never overwrites"):
        check_unused_run_dir(tmp_path / "done")
    (tmp_path / "old" / ".hydra").mkdir(parents=True)
    with pytest.raises(RunDirError, match=r"an earlier run \(\.hydra\)"):
        check_unused_run_dir(tmp_path / "old")


# --------------------------------------------------------------------------- run_stage

def test_run_stage_records_a_finished_run_and_its_config(tmp_path):
    run_dir, summary = run_stage(lambda cfg, run_dir: {"ok": True}, CFG, run_dir=tmp_path / "r")
    assert summary == {"ok": True}
    record = read_record(run_dir)
    assert record.state == "finished" and record.error is None and record.ended
    assert OmegaConf.load(run_dir / ".hydra" / "config.yaml") == CFG


def test_a_user_error_is_one_line_exit_2_and_recorded(tmp_path, capsys):
    def failing(cfg, run_dir):
        raise DataError("sub-003: image file not found: gm/sub-003_gm.nii.gz")

    with pytest.raises(SystemExit) as exit_:
        run_stage(failing, CFG, run_dir=tmp_path / "r")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: sub-003: image file not found: gm/sub-003_gm.nii.gz\n"
    record = read_record(tmp_path / "r")
    assert record.state == "failed" and record.error.startswith("sub-003: image file not found")


def test_ctrl_c_is_one_line_exit_130_with_the_way_to_continue(tmp_path, capsys):
    def interrupted(cfg, run_dir):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        run_stage(interrupted, CFG, run_dir=tmp_path / "r",
                  continue_with=lambda d: f"python -m brainage.train trainer.resume={d}")
    assert exit_.value.code == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"continue it with python -m brainage.train trainer.resume={tmp_path / 'r'}" in err
    assert read_record(tmp_path / "r").state == "interrupted"


def test_a_bug_is_recorded_and_keeps_its_traceback(tmp_path):
    def buggy(cfg, run_dir):
        return {}["missing"]

    with pytest.raises(KeyError):
        run_stage(buggy, CFG, run_dir=tmp_path / "r")
    assert read_record(tmp_path / "r").error == "KeyError: 'missing'"


def test_a_refused_run_writes_nothing(tmp_path, capsys):
    run_dir = _run(tmp_path / "r", "finished")
    before = _hashes(run_dir)
    with pytest.raises(SystemExit) as exit_:
        run_stage(lambda cfg, d: pytest.fail("must not run"), CFG, run_dir=run_dir)
    assert exit_.value.code == 2 and "already holds an earlier train run" in capsys.readouterr().err
    assert _hashes(run_dir) == before


def test_reopening_continues_an_unfinished_run_and_refuses_a_finished_one(tmp_path):
    run_dir = _run(tmp_path / "r", "failed")
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text("as it started\n")
    checked = []
    run_stage(lambda cfg, d: {}, CFG, run_dir=run_dir, reopen=checked.append)
    assert checked == [run_dir]
    record = read_record(run_dir)
    assert record.state == "finished" and len(record.resumed) == 1 and record.error is None
    assert (run_dir / ".hydra" / "config.yaml").read_text() == "as it started\n"
    with pytest.raises(SystemExit):
        run_stage(lambda cfg, d: {}, CFG, run_dir=run_dir, reopen=checked.append)
    assert len(checked) == 1


def test_reopen_refusals_are_user_errors(tmp_path):
    def refuse(run_dir):
        raise BrainageError("nothing to resume")

    with pytest.raises(SystemExit):
        run_stage(lambda cfg, d: {}, CFG, run_dir=tmp_path, reopen=refuse)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- command line

@pytest.mark.parametrize("typed, passed", [
    ("data.image_template={root}/gm/{subject_id}_gm.nii",
     "data.image_template='{root}/gm/{subject_id}_gm.nii'"),
    ("++data.image_template={root}/mri/mwp1{subject_id}.nii",
     "++data.image_template='{root}/mri/mwp1{subject_id}.nii'"),
    ("data.image_template='{root}/x/{subject_id}.nii'", "data.image_template='{root}/x/{subject_id}.nii'"),
    ("data.image_template={root}/it's/{subject_id}.nii",
     "data.image_template='{root}/it\\'s/{subject_id}.nii'"),
    ("trainer.epochs=3", "trainer.epochs=3"),
    ("model.widths=[4,8]", "model.widths=[4,8]"),
])
def test_path_templates_are_quoted_for_hydra(typed, passed):
    assert quote_path_templates([typed]) == [passed]


def test_a_resumed_run_runs_in_its_own_directory(tmp_path):
    cfg = OmegaConf.create({"trainer": {"resume": str(tmp_path / "run")},
                            "hydra": {"run": {"dir": "outputs/new"}}})
    ContinueInPlace("trainer.resume").on_run_start(cfg)
    assert cfg.hydra.run.dir == str(tmp_path / "run")
    cfg.trainer.resume = None
    cfg.hydra.run.dir = "outputs/new"
    ContinueInPlace("trainer.resume").on_run_start(cfg)
    assert cfg.hydra.run.dir == "outputs/new"


def test_only_the_data_overrides_given_are_applied():
    block = OmegaConf.create({"root": None, "cache": {"dir": "/scratch", "workers": None},
                              "stream": {"workers": None}})
    assert given_overrides(block) == {"cache": {"dir": "/scratch"}}
    assert given_overrides(None) == {} and given_overrides(OmegaConf.create({})) == {}


@pytest.mark.slow
def test_the_command_line_refuses_a_used_directory_without_touching_it(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "brainage.sweep", f"sweep_dir={tmp_path / 'none'}",
               f"hydra.run.dir={tmp_path / 'run'}"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert first.returncode == 2 and "Traceback" not in first.stderr
    run_dir = tmp_path / "run"
    assert {p.name for p in (run_dir / ".hydra").iterdir()} == {"config.yaml", "hydra.yaml",
                                                               "overrides.yaml"}
    record = json.loads((run_dir / "run.json").read_text())
    assert record["state"] == "failed" and "is not a directory" in record["error"]
    assert "is not a directory" in (run_dir / "sweep.log").read_text()  # the failed run's log
    before = _hashes(run_dir)
    mtimes = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    again = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith(f"error: {run_dir} already holds an "
                                                            "earlier sweep run, failed (")
    assert _hashes(run_dir) == before
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == mtimes


def test_a_path_template_typed_unquoted_reaches_the_config(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    shown = subprocess.run(
        [sys.executable, "-m", "brainage.train", "--cfg", "job", "data=pac2019",
         "data.image_template={root}/gm/{subject_id}_gm.nii"],
        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert OmegaConf.create(shown.stdout).data.image_template == "{root}/gm/{subject_id}_gm.nii"
    assert not (tmp_path / "outputs").exists()

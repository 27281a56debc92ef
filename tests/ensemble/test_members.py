"""Which runs form an ensemble: a sweep directory stands for its runs, in job order; a run listed
twice, a single run and a folder that is neither are refused in one line."""
import pytest

from brainage.ensemble.members import member_dirs
from brainage.errors import EnsembleError


def _job(sweep, name):
    (sweep / name / ".hydra").mkdir(parents=True)
    return sweep / name


def test_a_sweep_stands_for_its_job_folders_in_job_order(tmp_path):
    sweep = tmp_path / "multirun" / "train" / "2026-01-01_00-00-00"
    jobs = [_job(sweep, name) for name in ("0", "1", "2", "10")]
    (sweep / "multirun.yaml").write_text("{}")
    (sweep / "notes").mkdir()  # not a job: no .hydra/
    assert member_dirs([sweep]) == tuple(jobs)


def test_runs_listed_as_given_and_a_run_listed_twice_is_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for run in (a, b):
        run.mkdir()
        (run / "model.keras").write_text("")
    assert member_dirs([b, a]) == (b, a)
    with pytest.raises(EnsembleError, match=f"lists the training run {a} twice"):
        member_dirs([a, b, tmp_path / "." / "a"])
    with pytest.raises(EnsembleError, match="an ensemble needs at least two"):
        member_dirs([a])


def test_a_folder_that_is_neither_a_run_nor_a_sweep_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EnsembleError, match=r"empty: neither a training run \(no model.keras\) "
                                            r"nor a sweep"):
        member_dirs([tmp_path / "empty", tmp_path])

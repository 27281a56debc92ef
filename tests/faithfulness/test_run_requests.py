"""Which training runs the evaluate stage scores: ``train_dir``, ``train_dirs`` and what stands
for its runs (an ensemble training run, a sweep)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from brainage.errors import EvaluateError
from brainage.faithfulness.evaluation import _run_requests
from brainage.trained import TrainRunRequest


def _run(folder: Path) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"")
    return folder


def _ensemble_run(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A finished ``trainer.ensemble=2`` run: ``members/<k>_seed<s>/`` and ``ensemble.json``."""
    run = tmp_path / "ens"
    members = [_run(run / "members" / f"{k}_seed{42 + k}") for k in range(2)]
    (run / "ensemble.json").write_text(json.dumps(
        {"members": [{"path": str(m.relative_to(run)), "seed": 42 + k}
                     for k, m in enumerate(members)]}))
    return run, members


def _request(train_dir=None) -> TrainRunRequest:
    return TrainRunRequest(train_dir=train_dir, model_path=None, outputs_dir=Path("outputs"),
                           data={}, subjects="test")


def test_one_run_is_one_request(tmp_path):
    run = _run(tmp_path / "one")
    assert [r.train_dir for r in _run_requests(_request(run), None)] == [run]


def test_train_dir_naming_an_ensemble_run_scores_its_members(tmp_path):
    run, members = _ensemble_run(tmp_path)
    assert [r.train_dir for r in _run_requests(_request(run), None)] == members


def test_train_dirs_expand_an_ensemble_run_and_a_sweep(tmp_path):
    run, members = _ensemble_run(tmp_path)
    sweep = tmp_path / "sweep"
    jobs = [_run(sweep / str(k)) for k in (10, 2)]  # natural order: 2 before 10
    requests = _run_requests(_request(), [str(run), str(sweep)])
    assert [r.train_dir for r in requests] == members + jobs[::-1]


def test_a_run_listed_twice_is_refused(tmp_path):
    run, members = _ensemble_run(tmp_path)
    with pytest.raises(EvaluateError, match="twice"):
        _run_requests(_request(), [str(run), str(members[0])])

"""The members of an ensemble: finished training runs predicted and explained as one model.

``train_dirs=[A, B, C]`` lists the runs; an entry that is not itself a training run but a Hydra
sweep of training (``multirun/train/<date>_<time>/``, one subfolder per job, as ``make train -m``
and :mod:`brainage.sweep` lay it out) stands for the runs in its subfolders, in job order, and an
ensemble training run (``make train trainer.ensemble=N``: ``ensemble.json`` beside
``members/<k>_seed<s>/``) for its members, in member order. The
runs form one ensemble when they share the task (classification or regression), the grid and
preprocessing the models were trained on (``grid.json``: data format, source shape, affine, crop),
for classifiers the age bins, and when every regressor holds the age-bias correction its training
fitted. Anything else is refused in one line naming the member and what differs
(:class:`~brainage.errors.EnsembleError`), before any model is loaded.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainage.data.age_gap import AgeBiasCorrection, read_correction
from brainage.errors import EnsembleError
from brainage.neuro.grid import AFFINE_ATOL_MM
from brainage.trained import (
    TrainedGrid,
    TrainRun,
    TrainRunRequest,
    read_trained_grid,
    resolve_train_run,
)
from brainage.trained.grid import GRID_FILE, changed_steps

MODEL_FILE = "model.keras"
# An ensemble training run (brainage.training.ensemble_run): its record and its members' folder.
ENSEMBLE_FILE = "ensemble.json"
MEMBERS_DIR = "members"


@dataclass(frozen=True)
class Member:
    """One training run of an ensemble, with what combining it needs.

    Attributes
    ----------
    train : TrainRun
    grid : TrainedGrid
        The grid and preprocessing its model was trained on.
    correction : AgeBiasCorrection or None
        A regressor's age-bias correction (fitted on its validation split); None for a classifier.
    """

    train: TrainRun
    grid: TrainedGrid
    correction: AgeBiasCorrection | None


@dataclass(frozen=True)
class Ensemble:
    """Training runs checked to form one model: the same task, grid and bins (in the order given)."""

    members: tuple

    @property
    def first(self) -> TrainRun:
        """The first member's run: its data config reads the cohort, its grid checks it."""
        return self.members[0].train

    @property
    def task(self) -> str:
        return self.first.task

    @property
    def is_regression(self) -> bool:
        return self.first.is_regression

    @property
    def bin_edges(self) -> list:
        return list(self.first.cfg.data.bin_edges)

    @property
    def dirs(self) -> list[str]:
        return [str(m.train.dir) for m in self.members]

    @property
    def shared_validation(self) -> bool:
        """Whether every member was validated on the same subjects (ids and ages of ``split.csv``'s
        ``val`` rows): then no member trained on another's validation subjects."""
        first, *others = (_validation(m.train) for m in self.members)
        return all(other == first for other in others)


def member_dirs(entries: Sequence) -> tuple[Path, ...]:
    """The training runs of ``train_dirs``: each entry a run, or a sweep standing for its runs.

    Raises
    ------
    EnsembleError
        An entry that is neither, a run listed twice, or fewer than two runs in all.
    """
    dirs = [run for entry in entries for run in _runs_of(Path(str(entry)))]
    seen = set()
    for run in dirs:
        if run.resolve() in seen:
            raise EnsembleError(f"train_dirs lists the training run {run} twice; an ensemble's "
                                "members are different runs")
        seen.add(run.resolve())
    if len(dirs) < 2:
        raise EnsembleError(f"train_dirs gives {len(dirs)} training run ({', '.join(map(str, dirs))})"
                            "; an ensemble needs at least two (one run: train_dir=…)")
    return tuple(dirs)


def is_ensemble_run(path) -> bool:
    """Whether ``path`` is an ensemble training run (it holds ``ensemble.json``, no model)."""
    path = Path(str(path))
    return (path / ENSEMBLE_FILE).is_file() and not (path / MODEL_FILE).is_file()


def is_cross_validation_run(path) -> bool:
    """Whether ``path`` is a cross-validation run (``trainer.cv_folds=k``): its folds are runs of
    their own (``fold0/.hydra``), and it holds no model."""
    path = Path(str(path))  # fold0: brainage.training.cross_validation.FOLD_DIR, a layer above
    return (path / "fold0" / ".hydra").is_dir() and not (path / MODEL_FILE).is_file()


def stands_for_runs(path) -> bool:
    """Whether ``train_dir=<path>`` means several models: an ensemble run's members or a
    cross-validation's folds (each stage then reads it as ``train_dirs=[<path>]``)."""
    return is_ensemble_run(path) or is_cross_validation_run(path)


def ensemble_run_members(run: Path) -> list[Path]:
    """The member folders an ensemble training run's ``ensemble.json`` lists, in member order.

    Raises
    ------
    EnsembleError
        An unreadable ``ensemble.json``.
    """
    path = Path(run) / ENSEMBLE_FILE
    try:
        members = json.loads(path.read_text())["members"]
        return [Path(run) / str(m["path"]) for m in members]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EnsembleError(f"{path}: unreadable ({exc}); expected the members' paths that "
                            "make train trainer.ensemble=N writes") from exc


def _runs_of(entry: Path) -> list[Path]:
    """``[entry]`` for a training run; an ensemble run's members; a sweep's job folders (those
    holding a run) in job order."""
    if not entry.is_dir() or (entry / MODEL_FILE).is_file():
        return [entry]  # a run, or a missing folder that resolve_train_run names
    if is_ensemble_run(entry):
        return ensemble_run_members(entry)
    if (entry / MEMBERS_DIR).is_dir():
        raise EnsembleError(f"train_dirs entry {entry}: an ensemble training run that did not "
                            f"finish (no {ENSEMBLE_FILE}); pass its finished members, e.g. "
                            f"train_dirs=[{entry / MEMBERS_DIR}]")
    jobs = sorted((p for p in entry.iterdir() if p.is_dir() and (p / ".hydra").is_dir()),
                  key=_natural_key)
    if not jobs:
        raise EnsembleError(f"train_dirs entry {entry}: neither a training run (no {MODEL_FILE}) "
                            "nor a sweep of training runs (no job folder with .hydra/); pass "
                            "finished runs such as outputs/train/<date>_<time>")
    return jobs


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _recorded_grid(train: TrainRun) -> TrainedGrid:
    """The run's ``grid.json``; a run without one cannot be compared with the others."""
    grid = read_trained_grid(train.dir)
    if grid is None:
        raise EnsembleError(f"ensemble member {train.dir}: no {GRID_FILE} (trained before it "
                            "existed), so its grid cannot be compared with the other members'")
    return grid


def open_ensemble(entries: Sequence, outputs_dir: Path,
                  grid_of: Callable[[TrainRun], TrainedGrid] = _recorded_grid) -> Ensemble:
    """The runs of ``train_dirs`` (``entries``), each finished, checked to form one ensemble.

    ``grid_of`` gives a run's trained grid (default: its ``grid.json``; a stage may fall back on
    the run's own cohort for runs made before the file existed).

    Raises
    ------
    EnsembleError
        A run listed twice, fewer than two, or a member of another task, bins or grid than the
        first, or a regressor without its age-bias correction.
    TrainedRunError
        A run that is missing or did not finish.
    """
    runs = [resolve_train_run(TrainRunRequest(train_dir=d, model_path=None,
                                              outputs_dir=Path(outputs_dir), data={},
                                              subjects="all"))
            for d in member_dirs(entries)]
    first = runs[0]
    for run in runs[1:]:
        _check_same(run, "task", run.task, first, first.task)
        if not first.is_regression:
            _check_same(run, "age bins", _edges(run), first, _edges(first))
    corrections = [_correction(run) if first.is_regression else None for run in runs]
    grids = [grid_of(run) for run in runs]
    for run, grid in zip(runs[1:], grids[1:]):
        difference = _grid_difference(grid, grids[0])
        if difference is not None:
            _check_same(run, difference[0], difference[1], first, difference[2])
    return Ensemble(tuple(Member(*parts) for parts in zip(runs, grids, corrections)))


def _check_same(run: TrainRun, what: str, found, first: TrainRun, expected) -> None:
    if found != expected:
        raise EnsembleError(f"ensemble member {run.dir}: {what} {found}, but the first member "
                            f"{first.dir} has {expected}; an ensemble's members share task, "
                            "grid and age bins")


def _edges(run: TrainRun) -> list:
    return [float(e) for e in run.cfg.data.bin_edges]


def _correction(run: TrainRun) -> AgeBiasCorrection:
    stored = read_correction(run.dir)
    if stored.correction is None:
        raise EnsembleError(f"ensemble member {run.dir}: its training fitted no age-bias "
                            f"correction ({stored.problem}); every regressor of an ensemble needs "
                            "its own")
    return stored.correction


def _grid_difference(found: TrainedGrid, expected: TrainedGrid) -> tuple | None:
    """``(what, found, expected)`` of the first difference between two trained grids, or None."""
    pairs = [("preprocessing", found.preprocessing, expected.preprocessing),
             ("images of shape", found.grid.source_shape, expected.grid.source_shape),
             ("a crop (offset, shape) of", (found.grid.crop_offset, found.grid.crop_shape),
              (expected.grid.crop_offset, expected.grid.crop_shape))]
    for what, mine, theirs in pairs:
        if mine != theirs:
            return what, mine, theirs
    changed = changed_steps(found.steps, expected.steps)
    if changed:
        return ("preprocessing steps", {k: found.steps.get(k) for k in changed},
                {k: expected.steps.get(k) for k in changed})
    if not np.allclose(found.grid.affine, expected.grid.affine, atol=AFFINE_ATOL_MM):
        return ("the affine", np.round(found.grid.affine[:3], 3).tolist(),
                np.round(expected.grid.affine[:3], 3).tolist())
    return None


def _validation(train: TrainRun) -> set:
    split = train.split
    val = split[split["split"] == "val"]
    return set(zip(val["subject_id"].astype(str), np.round(val["age"].to_numpy(float), 3)))

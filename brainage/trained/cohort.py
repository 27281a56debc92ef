"""A finished training run's cohort, rebuilt by the data stage with its split checked, and the
subjects a stage selects from it; several runs' cohorts (an ensemble's members) rebuilt only where
needed."""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from brainage.data.prepared import PreparedData
from brainage.errors import TrainedRunError
from brainage.trained.grid import TrainedGrid, read_trained_grid
from brainage.trained.run import TrainRun, TrainRunRequest, resolve_train_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenedRun:
    """A training run with its cohort rebuilt by the data stage and the selected rows, in order."""

    train: TrainRun
    prep: PreparedData
    rows: np.ndarray

    def subject_ids(self, rows=None) -> list[str]:
        """Subject ids of ``rows`` (default: the selected rows)."""
        rows = self.rows if rows is None else rows
        return [str(s) for s in self.prep.table["subject_id"].to_numpy()[rows]]

    def image_path(self, row: int) -> str | None:
        """The subject's source image (None for a stacked-array cohort)."""
        path = self.prep.table["path"][row] if "path" in self.prep.table else None
        return str(path) if path is not None and pd.notna(path) and str(path) else None


def training_data(train: TrainRun, overrides: dict, progress: bool) -> PreparedData:
    """The run's cohort rebuilt by the data stage (from its cache), split unchanged.

    A cohort that no longer reproduces the run's ``split.csv`` is refused. A cross-validation
    fold (``trainer.cv_fold`` in its config) was trained on its fold's split, not the data
    stage's: its subjects are checked, and its split is the one ``split.csv`` records.
    """
    # deferred: the data stage loads nibabel and scipy, which the stages' command lines need not
    from brainage.data.cohort import prepare_data

    prep = prepare_data(train.data_config(overrides), seed=int(train.cfg.seed), run_dir=None,
                        progress=progress)
    same_subjects = list(prep.table["subject_id"]) == list(train.split["subject_id"])
    if same_subjects and _is_fold(train):
        table = prep.table.copy()
        table["split"] = train.split["split"].to_numpy()
        return replace(prep, table=table)
    if not same_subjects or list(prep.table["split"]) != list(train.split["split"]):
        raise TrainedRunError(f"the data stage no longer reproduces {train.dir}/split.csv (the "
                              "cohort or its files changed since training); use the original data")
    return prep


def _is_fold(train: TrainRun) -> bool:
    trainer = train.cfg.get("trainer") or {}
    return trainer.get("cv_folds") is not None and trainer.get("cv_fold") is not None


class TrainingCohorts:
    """Each training run's own cohort (an ensemble's members'), rebuilt by the data stage at most
    once and only where needed: its grid without ``grid.json``, the subjects a stage selects, a
    named reference image from its own training split."""

    def __init__(self, overrides: dict, progress: bool):
        self.overrides, self.progress = overrides, progress
        self._preps = {}

    def of(self, train: TrainRun) -> PreparedData:
        if train.dir not in self._preps:
            self._preps[train.dir] = training_data(train, self.overrides, self.progress)
        return self._preps[train.dir]

    def grid_of(self, train: TrainRun) -> TrainedGrid:
        """The grid the run's model was trained on: its ``grid.json``, else its cohort's grid."""
        recorded = read_trained_grid(train.dir)
        if recorded is not None:
            return recorded
        log.info("%s has no grid.json: its grid is taken from its cohort", train.dir)
        return TrainedGrid.of(train.data_config(self.overrides), self.of(train).grid)

    def reference_cohort(self, train: TrainRun, opened: OpenedRun) -> PreparedData:
        """The cohort a member's named reference images come from: its own training split (the
        opened cohort itself where the member's split is the opened run's)."""
        split, first = train.split, opened.train.split
        if list(split["subject_id"]) == list(first["subject_id"]) and \
                list(split["split"]) == list(first["split"]):
            return opened.prep
        return self.of(train)


def select_subjects(table: pd.DataFrame, subjects: str | tuple) -> np.ndarray:
    """Rows of ``table`` to use: a split name, ``all`` or subject ids (in the order given)."""
    if isinstance(subjects, str):
        if subjects == "all":
            rows = np.arange(len(table))
        else:
            rows = np.flatnonzero(table["split"].to_numpy() == subjects)
    else:
        subjects = [str(s) for s in subjects]
        known = set(table["subject_id"])
        unknown = [s for s in subjects if s not in known]
        if unknown:
            raise TrainedRunError("subjects not in the training run's cohort: "
                                  f"{', '.join(unknown[:5])}")
        position = {sid: i for i, sid in enumerate(table["subject_id"])}
        rows = np.array([position[s] for s in subjects], dtype=np.int64)
    if len(rows) == 0:
        raise TrainedRunError(f"subjects={subjects!r} selects no subject; use test, val, train, "
                              "all or a list of subject ids")
    return rows


def open_train_run(request: TrainRunRequest, progress: bool) -> OpenedRun:
    """Resolve the run, rebuild its cohort and select the requested subjects."""
    train = resolve_train_run(request)
    prep = training_data(train, request.data, progress)
    return OpenedRun(train, prep, select_subjects(prep.table, request.subjects))

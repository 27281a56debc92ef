"""The cohort a training run is applied to, and who of it the model was trained or tested on.

The cohort is the training run's data config with the user's overrides (``data.root=DIR`` points
it at another cohort of the same kind; for ``format: preprocessed`` data, at the raw scans whose
derivative ``make preprocess`` made). It is checked against the grid the model was trained on
(:mod:`brainage.predicting.grid_check`) and read whole: every subject, with or without an age,
no split (:func:`brainage.data.whole_cohort.whole_cohort`).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from brainage.data.prepared import PreparedData
from brainage.data.settings import DataSettings
from brainage.data.whole_cohort import WholeCohort, whole_cohort
from brainage.errors import BrainageError, PredictError
from brainage.predicting.grid_check import GridCheck
from brainage.trained import TrainedGrid, TrainRun, read_trained_grid, training_data

log = logging.getLogger(__name__)

AGE_TOLERANCE = 1e-3  # years: the same subject's age, read from the same table, is the same number


class TrainingCohort:
    """The training run's own cohort, rebuilt from its cache the first time it is needed (a
    named reference image, or the grid of a run made before ``grid.json``).

    Only the user's ``data.cache`` override applies to it: ``data.root`` and the like point at
    the cohort to predict, not at the one the model was trained on.
    """

    def __init__(self, train: TrainRun, overrides: dict, progress: bool):
        self.train = train
        self.overrides = {k: v for k, v in overrides.items() if k == "cache"}
        self.progress = progress
        self._prep = None

    def get(self, why: str) -> PreparedData:
        """The rebuilt cohort; ``why`` says in the error what needed it."""
        if self._prep is None:
            try:
                self._prep = training_data(self.train, self.overrides, self.progress)
            except BrainageError as exc:
                raise PredictError(f"{why} needs the training run's own cohort, which cannot be "
                                   f"read: {exc}") from exc
        return self._prep


def trained_grid(train: TrainRun, training: TrainingCohort) -> TrainedGrid:
    """The grid the model was trained on: the run's ``grid.json``, else its cohort's grid."""
    recorded = read_trained_grid(train.dir)
    if recorded is not None:
        return recorded
    log.info("%s has no grid.json (trained before make predict existed): its cohort's grid is "
             "taken from the training data", train.dir)
    prep = training.get(f"checking the grid ({train.dir} has no grid.json)")
    return TrainedGrid.of(train.data_config(training.overrides), prep.grid)


def read_cohort(train: TrainRun, overrides: dict, training: TrainingCohort,
                progress: bool) -> tuple[WholeCohort, str]:
    """The cohort to predict, checked against the model's grid, and how messages name it.

    Raises
    ------
    PredictError
        Another preprocessing, voxel size or grid than the model was trained on.
    DataError
        The cohort cannot be read (as the data stage says; a missing derivative names
        ``make preprocess``).
    """
    data_cfg = train.data_config(overrides)
    data = DataSettings.from_cfg(data_cfg)
    where = f"cohort {data.root or data.participants}"
    check = GridCheck(trained_grid(train, training), where, str(train.dir))
    check.check_preprocessing(data_cfg)
    cohort = whole_cohort(data, seed=int(train.cfg.seed), progress=progress,
                          check_source=check.check_source)
    check.check_grid(cohort.grid)
    return cohort, where


def training_split_flags(table: pd.DataFrame, split: pd.DataFrame) -> np.ndarray:
    """Per subject of ``table``, the training run's split it was in (``train``, ``val``,
    ``test``) or "".

    A subject is the training run's when its id is in ``split.csv`` and, where both know it, its
    age agrees: another cohort's ``sub-0001`` of another age is another person (and is counted in
    the log).
    """
    known = dict(zip(split["subject_id"].astype(str), zip(split["age"], split["split"])))
    flags, others = [], 0
    for sid, age in zip(table["subject_id"].astype(str), table["age"].to_numpy(dtype=float)):
        if sid not in known:
            flags.append("")
            continue
        split_age, name = known[sid]
        if np.isfinite(age) and not abs(age - float(split_age)) <= AGE_TOLERANCE:
            others += 1
            flags.append("")
            continue
        flags.append(str(name))
    if others:
        log.warning("%d subject(s) share an id with the training run's split.csv but not its age: "
                    "taken as other people (in_training_split empty)", others)
    return np.array(flags, dtype=object)

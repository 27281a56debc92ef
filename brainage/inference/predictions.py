"""Predicted age and brain-age gap of an age regressor's explained subjects (issue #13).

An explain run of a regression (``explain.json``'s ``task: regression``) lists each explained
subject's predicted age (``subjects.csv``'s ``predicted_age``, years). The infer stage writes them
to ``predictions.csv`` with the gap corrected by the correction the *training* run fitted on its
validation split (``metrics.json``'s ``age_gap.correction``; never refitted on the subjects it is
applied to), in the columns of training's ``test_predictions.csv``: ``subject_id, age,
predicted_age, gap, gap_corrected, predicted_age_corrected, gap_prediction_corrected``
(:func:`brainage.data.age_gap.gap_table`). The gap columns are also offered to the design
(``design.kind=regressor`` or ``median_split`` with ``design.column=gap_corrected``, …).
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from brainage.data.age_gap import AgeBiasCorrection, StoredCorrection, gap_table, read_correction
from brainage.errors import DataError, InferError

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.csv"


def is_regression(summary: dict) -> bool:
    """Whether an explain run (its ``explain.json``) explained an age regressor."""
    return summary.get("task") == "regression"  # .get: runs made before regression lack "task"


def stored_correction(train_dir) -> StoredCorrection:
    """The correction in ``<train_dir>/metrics.json`` (``age_gap.correction``;
    :func:`brainage.data.age_gap.read_correction`).

    A run whose training could not fit one (``correction: null``) gives NaN corrected columns, as
    its own ``test_predictions.csv`` has, and a warning.

    Raises
    ------
    InferError
        ``metrics.json`` missing or unreadable, or without a well-formed ``age_gap.correction``.
    """
    try:
        stored = read_correction(train_dir)
    except DataError as exc:
        raise InferError(str(exc)) from exc
    if stored.correction is None:
        log.warning("%s has no bias correction (%s): gap_corrected is NaN", stored.path, stored.problem)
    return stored


def correction_or_nan(stored: StoredCorrection) -> AgeBiasCorrection:
    """The stored correction, or one of NaNs (NaN corrected columns) where training fitted none."""
    return stored.or_nan()


def prediction_table(subjects: pd.DataFrame, correction: AgeBiasCorrection, run_dir) -> pd.DataFrame:
    """``predictions.csv`` of the explained ``subjects`` (rows of ``subjects.csv``), in order.

    Raises
    ------
    InferError
        ``subjects`` lacks ``predicted_age`` (not the explain run of a regression).
    """
    if "predicted_age" not in subjects.columns:
        raise InferError(f"{Path(run_dir) / 'subjects.csv'} has no predicted_age column; expected "
                         "the explain run of a model.task=regression training run (explain it "
                         "again with this version)")
    return gap_table(subjects["subject_id"], subjects["age"], subjects["predicted_age"],
                     correction)


def with_gap_columns(subjects: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """``subjects`` with the gap columns of ``table`` (same rows), for the design."""
    columns = [c for c in table.columns if c not in ("subject_id", "age", "predicted_age")]
    return subjects.assign(**{c: table[c].to_numpy() for c in columns})

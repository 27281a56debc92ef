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

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.data.age_gap import AgeBiasCorrection, gap_table
from brainage.errors import InferError

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.csv"
_FIELDS = ("gap_slope", "gap_intercept", "prediction_slope", "prediction_intercept", "n")


def is_regression(summary: dict) -> bool:
    """Whether an explain run (its ``explain.json``) explained an age regressor."""
    return summary.get("task") == "regression"  # .get: runs made before regression lack "task"


@dataclass(frozen=True)
class StoredCorrection:
    """The training run's bias correction, or why it has none (an undertrained model)."""

    correction: AgeBiasCorrection
    path: Path
    problem: str | None  # the training stage's reason for no correction; None when fitted

    def summary(self) -> dict:
        """``infer.json``'s account: where the correction came from and its coefficients."""
        return {"from": str(self.path), "fitted_on": "val",
                "correction": None if self.problem else self.correction.as_dict(),
                "problem": self.problem}


def stored_correction(train_dir) -> StoredCorrection:
    """The correction in ``<train_dir>/metrics.json`` (``age_gap.correction``).

    A run whose training could not fit one (``correction: null``) gives NaN corrected columns, as
    its own ``test_predictions.csv`` has, and a warning.

    Raises
    ------
    InferError
        ``metrics.json`` missing or unreadable, or without a well-formed ``age_gap.correction``.
    """
    path = Path(train_dir) / "metrics.json"
    expected = ("the bias correction the training stage of a model.task=regression run fits on "
                "its validation split (age_gap.correction)")
    if not path.is_file():
        raise InferError(f"{path} is missing: a regression run's predictions need {expected}")
    try:
        gap = json.loads(path.read_text()).get("age_gap")
    except (json.JSONDecodeError, AttributeError) as exc:
        raise InferError(f"{path} is not a metrics.json object ({exc}); expected {expected}") from exc
    if not isinstance(gap, dict) or "correction" not in gap:
        raise InferError(f"{path} has no age_gap.correction; expected {expected}")
    if gap["correction"] is None:
        problem = str(gap.get("problem") or "no correction was fitted")
        log.warning("%s has no bias correction (%s): gap_corrected is NaN", path, problem)
        return StoredCorrection(AgeBiasCorrection(np.nan, np.nan, np.nan, np.nan, 0), path, problem)
    values = gap["correction"]
    missing = [k for k in _FIELDS if not isinstance(values, dict) or k not in values]
    if missing:
        raise InferError(f"{path}: age_gap.correction lacks {', '.join(missing)}; expected "
                         f"{', '.join(_FIELDS)}")
    return StoredCorrection(AgeBiasCorrection.from_dict(values), path, None)


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

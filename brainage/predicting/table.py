"""``predictions.csv`` and the accuracy it shows where ages are known.

An age regressor's rows carry the columns of training's ``test_predictions.csv``
(:func:`brainage.data.age_gap.gap_table`): ``subject_id, age, predicted_age, gap, gap_corrected,
predicted_age_corrected, gap_prediction_corrected``, the gaps corrected by the correction the
training run fitted on its validation split (never refitted here); without an age, the age and
the gaps are empty and the corrected prediction is still given. A classifier's rows carry
``subject_id, age, bin`` (the true bin where the age is known and within the bins),
``predicted_bin, predicted_range`` and one probability per bin (``prob_bin<k>``, softmax of the
logits), ``correct`` where the bin is known. Both end with ``in_training_split``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from brainage.data.age_gap import AgeBiasCorrection, gap_table
from brainage.data.bins import assign_bins, bin_labels
from brainage.ensemble.combine import softmax
from brainage.reporting.predict_report import SPLIT_COLUMN

__all__ = ["SPLIT_COLUMN", "accuracy_summary", "bin_rows", "classification_table",
           "regression_table"]


def regression_table(table: pd.DataFrame, predicted: np.ndarray,
                     correction: AgeBiasCorrection) -> pd.DataFrame:
    """The rows of an age regressor's predictions (``table``: subject_id, age)."""
    return gap_table(table["subject_id"], table["age"].to_numpy(dtype=float), predicted,
                     correction)


def classification_table(table: pd.DataFrame, logits: np.ndarray, bin_edges) -> pd.DataFrame:
    """The rows of an age-bin classifier's predictions (``table``: subject_id, age)."""
    return bin_rows(table, softmax(logits), logits.argmax(axis=1), bin_edges)


def bin_rows(table: pd.DataFrame, probabilities: np.ndarray, predicted: np.ndarray,
             bin_edges) -> pd.DataFrame:
    """The rows of a classifier's (or an ensemble's) ``probabilities`` and ``predicted`` bins."""
    ages = table["age"].to_numpy(dtype=float)
    bins = assign_bins(ages, bin_edges)
    out = pd.DataFrame({
        "subject_id": table["subject_id"].astype(str).to_numpy(),
        "age": ages,
        "bin": pd.Series(bins, dtype="Int64").mask(bins < 0),
        "predicted_bin": predicted,
        "predicted_range": np.array(bin_labels(bin_edges), dtype=object)[predicted],
    })
    for k in range(probabilities.shape[1]):
        out[f"prob_bin{k}"] = probabilities[:, k]
    out["correct"] = pd.array([bool(p == b) if b >= 0 else pd.NA
                               for p, b in zip(predicted, bins)], dtype="boolean")
    return out


def accuracy_summary(predictions: pd.DataFrame, regression: bool) -> dict:
    """How well the model did where the truth is known: all such subjects, and those outside the
    training run's split (``held_out``), which alone measure generalisation."""
    held_out = predictions[SPLIT_COLUMN] == ""
    return {"all": _scores(predictions, regression),
            "held_out": _scores(predictions[held_out], regression)}


def _scores(rows: pd.DataFrame, regression: bool) -> dict:
    if regression:
        known = rows[np.isfinite(rows["age"].to_numpy(dtype=float))]
        ages, predicted = known["age"].to_numpy(float), known["predicted_age"].to_numpy(float)
        r = (float(np.corrcoef(ages, predicted)[0, 1])
             if len(ages) >= 3 and np.ptp(ages) > 0 and np.ptp(predicted) > 0 else None)
        gaps = known["gap_corrected"].to_numpy(float)
        return {"n": int(len(known)),
                "mae": float(np.abs(predicted - ages).mean()) if len(known) else None,
                "pearson_r": r,
                "mean_gap_corrected": (float(gaps.mean()) if len(gaps) and np.isfinite(gaps).all()
                                       else None)}
    known = rows[rows["bin"].notna()]
    truth, predicted = known["bin"].to_numpy(int), known["predicted_bin"].to_numpy(int)
    per_bin = [float((predicted[truth == k] == k).mean()) for k in np.unique(truth)]
    return {"n": int(len(known)),
            "accuracy": float((truth == predicted).mean()) if len(known) else None,
            "balanced_accuracy": float(np.mean(per_bin)) if per_bin else None}

"""``predictions.csv`` of an ensemble, and how the ensemble and each member did where ages are known.

The ensemble's rows carry the columns of one run's (:mod:`brainage.predicting.table`) for the
ensemble's prediction — the mean of the members' softmax probabilities (the bin their arg-max),
or the mean predicted age with the ensemble's correction
(:class:`~brainage.ensemble.correction.EnsembleCorrection`) — and, before ``in_training_split``,
each subject's spread across the members: ``prob_sd_bin<k>`` and ``members_agreeing`` (members
whose own bin is the ensemble's) for a classifier; ``predicted_age_sd``, ``predicted_age_min``
and ``predicted_age_max`` for a regressor. ``in_training_split`` is the split of any member the
subject was in, ``train`` first: a subject one member trained on is not held out for the ensemble.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from brainage.ensemble.combine import AgeSpread, ClassSpread
from brainage.ensemble.correction import EnsembleCorrection
from brainage.ensemble.members import Ensemble
from brainage.predicting.table import (
    SPLIT_COLUMN,
    accuracy_summary,
    bin_rows,
    classification_table,
    regression_table,
)

_SPLIT_PRIORITY = ("train", "val", "test")  # the split a subject counts in when members differ


def ensemble_correction(ensemble: Ensemble) -> EnsembleCorrection:
    """The members' corrections combined (a regressor ensemble)."""
    return EnsembleCorrection(tuple(m.correction for m in ensemble.members),
                              ensemble.shared_validation)


def ensemble_table(table: pd.DataFrame, outputs: np.ndarray, ensemble: Ensemble,
                   flags: np.ndarray) -> pd.DataFrame:
    """The ensemble's rows from the members' ``outputs`` (members, subjects, outputs) for the
    cohort's ``table`` (subject_id, age); ``flags`` from :func:`combined_flags`."""
    if ensemble.is_regression:
        predicted = outputs[..., 0]
        out = ensemble_correction(ensemble).table(table["subject_id"], table["age"], predicted)
        spread = AgeSpread.of(predicted)
        out["predicted_age_sd"] = spread.sd
        out["predicted_age_min"], out["predicted_age_max"] = spread.low, spread.high
    else:
        spread = ClassSpread.of(outputs)
        out = bin_rows(table, spread.probabilities, spread.predicted, ensemble.bin_edges)
        for k in range(spread.sd.shape[1]):
            out[f"prob_sd_bin{k}"] = spread.sd[:, k]
        out["members_agreeing"] = spread.agreeing
    out[SPLIT_COLUMN] = flags
    return out


def combined_flags(member_flags: list) -> np.ndarray:
    """Per subject, the split of any member it was in (``train`` before ``val`` before ``test``),
    or "" when it is in no member's split; ``member_flags`` per member as
    :func:`~brainage.predicting.cohort.training_split_flags` gives them."""
    flags = np.stack(member_flags)
    combined = np.full(flags.shape[1], "", dtype=object)
    for split in reversed(_SPLIT_PRIORITY):
        combined[(flags == split).any(axis=0)] = split
    return combined


def member_accuracies(table: pd.DataFrame, outputs: np.ndarray, ensemble: Ensemble,
                      member_flags: list) -> list[dict]:
    """Each member's run and accuracy (or MAE) on the cohort, as one run's ``predict.json`` gives
    it; held out means outside that member's own split."""
    scores = []
    for member, out, flags in zip(ensemble.members, outputs, member_flags):
        rows = (regression_table(table, out[:, 0], member.correction) if ensemble.is_regression
                else classification_table(table, out, ensemble.bin_edges))
        rows[SPLIT_COLUMN] = flags
        scores.append({"train_dir": str(member.train.dir),
                       "accuracy": accuracy_summary(rows, ensemble.is_regression)})
    return scores


def against_members(accuracy: dict, members: list[dict], regression: bool) -> dict:
    """The ensemble's accuracy (a classifier) or MAE (a regressor) over every subject with an age,
    beside the median and the best member's."""
    metric = "mae" if regression else "accuracy"
    values = [m["accuracy"]["all"][metric] for m in members]
    if accuracy["all"][metric] is None or any(v is None for v in values):
        return {"metric": metric, "ensemble": None, "median_member": None, "best_member": None,
                "best_train_dir": None}
    best = int(np.argmin(values) if regression else np.argmax(values))
    return {"metric": metric, "ensemble": accuracy["all"][metric],
            "median_member": float(np.median(values)), "best_member": values[best],
            "best_train_dir": members[best]["train_dir"]}

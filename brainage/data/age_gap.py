"""The brain-age gap and its correction for regression to the mean, fitted on the validation split.

A model that predicts age shrinks its predictions towards the training mean: the gap
(``predicted - age``) correlates negatively with age, so a raw gap says as much about a subject's
age as about their brain. Two standard corrections, both fitted on the validation split only
(never on the subjects they are applied to; Smith et al. 2019, NeuroImage 200:528; de Lange & Cole
2020, NeuroImage: Clinical 26:102229):

* the gap correction (Smith 2019, Beheshti 2019): regress ``gap = alpha * age + beta`` and
  subtract it, ``gap_corrected = gap - (alpha * age + beta)``;
* the prediction correction (Cole 2018, de Lange & Cole 2020): regress
  ``predicted = a * age + b`` and invert it, ``predicted_corrected = (predicted - b) / a``.

With ``alpha = a - 1`` and ``beta = b`` (the same least-squares fit) the two corrected gaps differ
by the factor ``a``: ``gap_corrected = a * (predicted_corrected - age)``.

The training stage fits the correction (a failed fit is its :class:`~brainage.errors.TrainError`)
and stores it in ``metrics.json`` (``age_gap.correction``); the infer stage applies the stored one
(:meth:`AgeBiasCorrection.from_dict`). ``brainage.training.age_gap`` re-exports this module.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from brainage.errors import TrainError


@dataclass(frozen=True)
class AgeBiasCorrection:
    """The two linear corrections, fitted on one split (the validation split).

    Attributes
    ----------
    gap_slope, gap_intercept : float
        ``alpha``, ``beta`` of ``gap = alpha * age + beta``.
    prediction_slope, prediction_intercept : float
        ``a``, ``b`` of ``predicted = a * age + b``.
    n : int
        Subjects the fit saw.
    """

    gap_slope: float
    gap_intercept: float
    prediction_slope: float
    prediction_intercept: float
    n: int

    @classmethod
    def fit(cls, ages, predicted) -> "AgeBiasCorrection":
        """Least-squares fits on ``ages`` and ``predicted`` (one split, e.g. validation).

        Raises
        ------
        TrainError
            Fewer than two subjects, equal ages, or a prediction that does not grow with age
            (``a <= 0``: the prediction correction cannot be inverted).
        """
        ages = np.asarray(ages, dtype=float)
        predicted = np.asarray(predicted, dtype=float)
        if len(ages) < 2 or np.ptp(ages) == 0:
            raise TrainError(f"bias correction: {len(ages)} validation subjects with "
                             f"{len(np.unique(ages))} distinct ages; it needs at least two")
        a, b = np.polyfit(ages, predicted, 1)
        alpha, beta = np.polyfit(ages, predicted - ages, 1)
        if not a > 0:
            raise TrainError(f"bias correction: on the validation split the prediction does not "
                             f"grow with age (slope {a:.3g}); train longer before correcting")
        return cls(float(alpha), float(beta), float(a), float(b), int(len(ages)))

    @classmethod
    def from_dict(cls, values: dict) -> "AgeBiasCorrection":
        """From ``metrics.json``'s ``age_gap.correction``."""
        return cls(**{k: values[k] for k in cls.__dataclass_fields__})

    def as_dict(self) -> dict:
        return asdict(self)

    def corrected_gap(self, ages, predicted) -> np.ndarray:
        """``gap - (alpha * age + beta)``."""
        ages = np.asarray(ages, dtype=float)
        gap = np.asarray(predicted, dtype=float) - ages
        return gap - (self.gap_slope * ages + self.gap_intercept)

    def corrected_prediction(self, predicted) -> np.ndarray:
        """``(predicted - b) / a``."""
        return (np.asarray(predicted, dtype=float) - self.prediction_intercept) \
            / self.prediction_slope


def gap_table(subject_ids, ages, predicted, correction: AgeBiasCorrection):
    """``test_predictions.csv``: ``subject_id, age, predicted_age, gap, gap_corrected,
    predicted_age_corrected, gap_prediction_corrected`` (the last: corrected prediction - age)."""
    import pandas as pd

    ages = np.asarray(ages, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    corrected_prediction = correction.corrected_prediction(predicted)
    return pd.DataFrame({
        "subject_id": [str(s) for s in subject_ids],
        "age": ages,
        "predicted_age": predicted,
        "gap": predicted - ages,
        "gap_corrected": correction.corrected_gap(ages, predicted),
        "predicted_age_corrected": corrected_prediction,
        "gap_prediction_corrected": corrected_prediction - ages,
    })


def gap_age_correlations(table) -> dict:
    """Pearson r of age with the raw and the corrected gaps (0 is the aim after correction)."""
    def r(column):
        values = table[column].to_numpy(dtype=float)
        if len(values) < 3 or not np.isfinite(values).all() or np.std(values) == 0 or np.std(table["age"]) == 0:
            return None
        return float(np.corrcoef(table["age"].to_numpy(dtype=float), values)[0, 1])

    return {"gap": r("gap"), "gap_corrected": r("gap_corrected"),
            "gap_prediction_corrected": r("gap_prediction_corrected")}

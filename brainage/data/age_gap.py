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
and stores it in ``metrics.json`` (``age_gap.correction``); the infer and predict stages apply the
stored one (:func:`read_correction`). ``brainage.training.age_gap`` re-exports this module.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from brainage.errors import DataError, TrainError

_EXPECTED = ("the bias correction the training stage of a model.task=regression run fits on its "
             "validation split (age_gap.correction)")


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


@dataclass(frozen=True)
class StoredCorrection:
    """A training run's bias correction as ``metrics.json`` holds it, or why it has none.

    ``correction`` is None exactly when ``problem`` says why: the training stage could not fit one
    (an undertrained model, ``age_gap.correction: null``).
    """

    correction: AgeBiasCorrection | None
    path: Path
    problem: str | None

    def or_nan(self) -> AgeBiasCorrection:
        """The correction, or one of NaNs (NaN corrected columns, as the run's own
        ``test_predictions.csv`` has them) where training fitted none."""
        return self.correction or AgeBiasCorrection(np.nan, np.nan, np.nan, np.nan, 0)

    def summary(self) -> dict:
        """An account for a stage's JSON: where the correction came from and its coefficients."""
        return {"from": str(self.path), "fitted_on": "val",
                "correction": None if self.correction is None else self.correction.as_dict(),
                "problem": self.problem}


def read_correction(train_dir) -> StoredCorrection:
    """The correction in ``<train_dir>/metrics.json`` (``age_gap.correction``), the one reader of
    it for every stage.

    Raises
    ------
    DataError
        ``metrics.json`` missing, not a JSON object, without ``age_gap.correction``, or with a
        correction that lacks a coefficient or holds a non-number; the message names the file.
    """
    path = Path(train_dir) / "metrics.json"
    if not path.is_file():
        raise DataError(f"{path} is missing: a regression run's predictions need {_EXPECTED}")
    try:
        gap = json.loads(path.read_text()).get("age_gap")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise DataError(f"{path} is not a metrics.json object ({exc}); expected {_EXPECTED}") from exc
    if not isinstance(gap, dict) or "correction" not in gap:
        raise DataError(f"{path} has no age_gap.correction; expected {_EXPECTED}")
    if gap["correction"] is None:
        return StoredCorrection(None, path, str(gap.get("problem") or "no correction was fitted"))
    return StoredCorrection(_parse_correction(gap["correction"], path), path, None)


def _parse_correction(values, path) -> AgeBiasCorrection:
    fields = tuple(AgeBiasCorrection.__dataclass_fields__)
    missing = [k for k in fields if not isinstance(values, dict) or k not in values]
    if missing:
        raise DataError(f"{path}: age_gap.correction lacks {', '.join(missing)}; expected "
                        f"{', '.join(fields)}")
    bad = [k for k in fields if isinstance(values[k], bool) or not isinstance(values[k], (int, float))]
    if bad:
        raise DataError(f"{path}: age_gap.correction's {', '.join(bad)} "
                        f"{'is' if len(bad) == 1 else 'are'} not a number; expected numbers")
    return AgeBiasCorrection.from_dict(values)


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

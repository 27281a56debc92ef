"""Explaining an age regressor (``model.task=regression``): the age output as the target, and the
high- vs low-gap groups that take the place of the age bins.

A regression run has one output, ``age`` (years); its maps explain that output and, for the
conservative methods, sum to the predicted age. Group maps, region tables and figures are per gap
group rather than per age bin: group 0 holds the explained subjects whose corrected brain-age gap
is at or below their median, group 1 those above it. The gap is corrected with the linear
correction the training stage fitted on its validation split (``metrics.json``'s
``age_gap.correction``: ``gap_corrected = gap - (gap_slope * age + gap_intercept)``; see
:mod:`brainage.training.age_gap`). The median is taken over every selected subject before any
batch is explained, so the shards of a sharded run agree on it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from brainage.data.age_gap import AgeBiasCorrection, read_correction
from brainage.errors import DataError, ExplainError

log = logging.getLogger(__name__)

GROUP_NAMES = ("lowgap", "highgap")
# Targets of a regression: the age output. "predicted" names output 0 (the only one).
REGRESSION_TARGETS = ("predicted",)


def check_regression_targets(specs: tuple, run_dir) -> None:
    """Only the age output can be explained: refuse class indices, ``true`` and ``all``.

    Raises
    ------
    ExplainError
        Naming the target and what a regression run offers.
    """
    for spec in specs:
        if spec not in REGRESSION_TARGETS:
            what = f"class index {spec}" if isinstance(spec, int) else f"{spec!r}"
            raise ExplainError(f"target {what}: the training run {run_dir} is a regression (one "
                               "output, the age in years) with no classes; use targets=[predicted]")


@dataclass(frozen=True)
class GapGroups:
    """How explained subjects are split into the low- and high-gap groups.

    Attributes
    ----------
    correction : AgeBiasCorrection or None
        The training run's correction of the gap; None (the raw gap) when the run has none.
    threshold : float
        The median corrected gap of the explained subjects; above it is the high-gap group.
    """

    correction: AgeBiasCorrection | None
    threshold: float

    @property
    def corrected(self) -> bool:
        """Whether the training run's correction is applied."""
        return self.correction is not None

    def corrected_gap(self, ages, predicted) -> np.ndarray:
        """The corrected gap (:meth:`AgeBiasCorrection.corrected_gap`), or the raw gap."""
        if self.correction is None:
            return np.asarray(predicted, dtype=float) - np.asarray(ages, dtype=float)
        return self.correction.corrected_gap(ages, predicted)

    def group(self, gaps) -> np.ndarray:
        """0 (gap at or below the median) or 1 (above) per subject."""
        return (np.asarray(gaps, dtype=float) > self.threshold).astype(np.int64)


def gap_correction(train_dir) -> AgeBiasCorrection | None:
    """The correction in the run's ``metrics.json`` (``age_gap.correction``), or None when the
    file is absent or training fitted none.

    Raises
    ------
    ExplainError
        ``metrics.json`` is there but malformed (:func:`brainage.data.age_gap.read_correction`).
    """
    if not (train_dir / "metrics.json").is_file():
        return None
    try:
        return read_correction(train_dir).correction
    except DataError as exc:
        raise ExplainError(str(exc)) from exc


def gap_groups(opened, model, batch_size: int,
               correction: AgeBiasCorrection | None = None) -> GapGroups:
    """Predict every selected subject once and split them at the median corrected gap.

    ``correction``: the one to apply (an ensemble's); None: the training run's own.
    """
    if correction is None:
        correction = gap_correction(opened.train.dir)
    if correction is None:
        log.warning("%s has no age_gap.correction in metrics.json: gap groups split the "
                    "uncorrected gap", opened.train.dir)
    rows = np.asarray(opened.rows)
    predicted = np.concatenate([
        np.asarray(model.predict(np.asarray(opened.prep.volumes[rows[i:i + batch_size]],
                                            dtype=np.float32)[..., None], verbose=0))[:, 0]
        for i in range(0, len(rows), batch_size)])
    ages = opened.prep.table["age"].to_numpy(dtype=float)[rows]
    gaps = GapGroups(correction, 0.0).corrected_gap(ages, predicted)
    return GapGroups(correction, float(np.median(gaps)))


def group_captions(median: float | None = None) -> dict:
    """Figure captions of the two gap groups."""
    at = "" if median is None else f" {median:+.1f} y"
    return {0: f"low gap (≤ median{at})", 1: f"high gap (> median{at})"}


def gap_captions(subjects) -> dict:
    """Captions of the gap groups of an explained run's ``subjects`` table."""
    return group_captions(float(subjects["gap_corrected"].median()) if len(subjects) else None)


def gap_summary(subjects) -> dict:
    """``explain.json``'s account of a regression run's subjects: the age output explained, the
    median corrected gap the groups split at, and the explained subjects' MAE."""
    error = (subjects["predicted_age"] - subjects["age"]).abs()
    return {"explained_output": "age (years)",
            "gap_groups": {"split_at_median_gap_corrected": float(subjects["gap_corrected"].median()),
                           "names": list(GROUP_NAMES)},
            "mae_explained_subjects": float(error.mean())}

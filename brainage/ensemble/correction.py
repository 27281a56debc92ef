"""The age-bias correction of a regression ensemble's mean prediction.

Each member's training fitted its own correction on its validation split
(:mod:`brainage.data.age_gap`), never on the subjects it is applied to. How the ensemble keeps
that promise depends on whether its members share the split:

* **one validation split** (members differing only in their seed, trained on one split): the
  ensemble's correction is the one fitted on the members' mean validation predictions. A
  least-squares fit is linear in what it fits, so with the same ages that fit *is* the mean of the
  members' coefficients (``a``, ``b``, ``alpha``, ``beta``): no validation subject is predicted
  again, and the corrected columns are those of :func:`~brainage.data.age_gap.gap_table` for the
  mean prediction.
* **different validation splits** (cross-validation folds, seeds that also draw the split): one
  member's validation subjects were another's training subjects, so the mean prediction on them
  is not held out and no honest fit for the ensemble exists. Each member's own correction is
  applied to its own prediction instead and the results averaged: ``predicted_age_corrected`` is
  the mean of the members' corrected predictions, ``gap_corrected`` the mean of their corrected
  gaps (the gap correction being linear, that is the mean coefficients' correction of the mean
  prediction).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainage.data.age_gap import AgeBiasCorrection, gap_table

_COEFFICIENTS = ("gap_slope", "gap_intercept", "prediction_slope", "prediction_intercept")


@dataclass(frozen=True)
class EnsembleCorrection:
    """The members' corrections (in member order) and whether they share one validation split."""

    members: tuple
    shared_validation: bool

    @property
    def mean(self) -> AgeBiasCorrection:
        """The mean of the members' coefficients: with one shared validation split, the fit on
        the members' mean validation predictions (``n`` its subjects; else 0, no one fit)."""
        means = {k: float(np.mean([getattr(c, k) for c in self.members])) for k in _COEFFICIENTS}
        return AgeBiasCorrection(**means, n=self.members[0].n if self.shared_validation else 0)

    def table(self, subject_ids, ages, predicted: np.ndarray) -> pd.DataFrame:
        """The columns of :func:`~brainage.data.age_gap.gap_table` for the ensemble, from the
        members' predicted ages ``predicted`` (members, subjects)."""
        ages = np.asarray(ages, dtype=float)
        predicted = np.asarray(predicted, dtype=float)
        out = gap_table(subject_ids, ages, predicted.mean(axis=0), self.mean)
        if not self.shared_validation:
            corrected = np.mean([c.corrected_prediction(p)
                                 for c, p in zip(self.members, predicted)], axis=0)
            out["predicted_age_corrected"] = corrected
            out["gap_prediction_corrected"] = corrected - ages
        return out

    def summary(self, sources: list) -> dict:
        """An account for ``predict.json``: ``sources`` are the members' ``metrics.json``."""
        if self.shared_validation:
            fitted_on, how = ("val, one split shared by every member",
                              "fitted on the members' mean validation predictions (the mean of "
                              "their coefficients)")
        else:
            fitted_on, how = ("each member's own val split (the splits differ)",
                              "the mean of the members' corrected predictions and gaps")
        return {"from": [str(s) for s in sources], "fitted_on": fitted_on, "combined": how,
                "correction": self.mean.as_dict() if self.shared_validation else None,
                "members": [c.as_dict() for c in self.members], "problem": None}

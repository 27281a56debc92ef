"""The baselines there are: each one's name, the features it reads and what it predicts.

Apart from the fitting (:mod:`~brainage.training.baselines.models`), so that the settings can
check names without importing the metrics, which import the training settings.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Baseline:
    """A baseline: its name, the features it reads, and what it predicts (``bin`` or ``age``)."""

    name: str
    features: str
    target: str
    description: str

    @property
    def penalty_name(self) -> str:
        return "alpha" if self.target == "age" else "C"


BASELINES = {b.name: b for b in [
    Baseline("ridge_age_blocks", "blocks", "age",
             "ridge regression on age over block means, binned with the run's bin edges"),
    Baseline("logistic_blocks", "blocks", "bin",
             "multinomial logistic regression over block means"),
    Baseline("logistic_regions", "regions", "bin",
             "multinomial logistic regression over atlas-region GM means"),
    Baseline("ridge_age_regions", "regions", "age",
             "ridge regression on age over atlas-region GM means, binned"),
]}

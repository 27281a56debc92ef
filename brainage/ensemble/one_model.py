"""An ensemble of trained models predicted and explained as one model.

:class:`EnsembleModel` predicts as one model: a classifier ensemble gives the mean of its members'
softmax probabilities (its class the arg-max), a regressor ensemble the mean predicted age.
:class:`EnsembleAnalyzer` explains as one model: every member explains the same batch and the same
target — the *ensemble's* predicted class (not each member's own), the subject's true bin, a class
index or each class; a regressor's age output — and the ensemble's map is the mean of the
members' maps. That is the map of the averaged model under every method that is linear at
the top: the averaging is a last, linear layer, which passes each member ``1/N`` of its own
output to explain, and a member's map scales with what it is given. So a conserving method's
mean map sums to the mean of the members' explained outputs. The members' maps travel
with the mean (:attr:`EnsembleExplanation.member_maps`) for the spread maps and region tables.
The explain stage, and the evaluate stage scoring the ensemble as one more model, use both.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainage.ensemble.combine import ClassSpread


@dataclass(frozen=True)
class EnsembleModel:
    """The members' Keras models predicting as one (the ``predict`` a stage calls on a model)."""

    models: tuple
    regression: bool

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        """Every member's outputs of the batch ``x``, shape (members, batch, outputs)."""
        return np.stack([np.asarray(model.predict(x, verbose=0)) for model in self.models])

    def predict(self, x: np.ndarray, verbose: int = 0) -> np.ndarray:
        """The mean age (batch, 1) of a regressor ensemble, or a classifier ensemble's mean
        probabilities (batch, classes), whose arg-max is its predicted bin."""
        outputs = self.predict_members(x)
        if self.regression:
            return outputs.astype(np.float64).mean(axis=0)
        return ClassSpread.of(outputs).probabilities


@dataclass(frozen=True)
class EnsembleExplanation:
    """The mean of the members' explanations of one batch, with the members' maps.

    Shaped as one model's :class:`~brainage.relevance.explanation.Explanation`: ``maps`` the
    mean map (float32, like ``x``; a leading class axis for ``target="all"``), ``outputs`` the
    mean explained output, ``relevance_sum``, ``rel_error`` and ``negative_share`` of the mean
    map; ``member_maps`` has a leading member axis.
    """

    maps: np.ndarray
    outputs: np.ndarray
    target: np.ndarray
    relevance_sum: np.ndarray
    rel_error: np.ndarray
    negative_share: np.ndarray
    member_maps: np.ndarray
    trace: None = None  # no per-layer trace: the mean passes through no layer
    extras: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EnsembleAnalyzer:
    """One method's analyzer on every member (in member order)."""

    members: tuple
    regression: bool

    def explain(self, x: np.ndarray, target, labels: np.ndarray,
                predicted: np.ndarray | None = None) -> EnsembleExplanation:
        """Every member explains ``target`` of the batch ``x``; ``labels`` are the subjects'
        true bins (or the classes a ``true`` target fixes), ``predicted`` the ensemble's
        predicted bins (the class ``predicted`` names for a classifier: each member explains
        it, not its own arg-max; needed for that target only)."""
        if target == "predicted" and not self.regression:
            if predicted is None:
                raise ValueError("an ensemble explains its own predicted class (the arg-max of "
                                 "its mean probabilities): pass predicted")
            target, labels = "true", predicted
        return mean_explanation([a.explain(x, target=target, labels=labels)
                                 for a in self.members])


def mean_explanation(explained: list) -> EnsembleExplanation:
    """The mean of the members' explanations of one batch and target."""
    members = np.stack([np.asarray(e.maps) for e in explained])
    outputs = np.mean([np.asarray(e.outputs, dtype=np.float64) for e in explained], axis=0)
    scale = np.mean([np.abs(np.asarray(e.outputs if getattr(e, "scale", None) is None
                                       else e.scale, dtype=np.float64)) for e in explained], axis=0)
    mean = members.astype(np.float64).mean(axis=0).astype(np.float32)
    m = mean.astype(np.float64)
    axes = tuple(range(outputs.ndim, m.ndim))  # a map per leading index (class, subject)
    total, absolute = m.sum(axis=axes), np.abs(m).sum(axis=axes)
    negative = np.abs(np.minimum(m, 0.0)).sum(axis=axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_error = np.where(scale > 0, np.abs(total - outputs) / scale, np.nan)
        negative_share = np.where(absolute > 0, negative / absolute, 0.0)
    return EnsembleExplanation(mean, outputs, np.asarray(explained[0].target), total, rel_error,
                               negative_share, members, extras=_mean_reference(explained))


def _mean_reference(explained: list) -> dict:
    """``{"reference_outputs": mean}`` where every member reports its value at its reference."""
    extras = [getattr(e, "extras", None) or {} for e in explained]
    if not all("reference_outputs" in e for e in extras):
        return {}
    return {"reference_outputs": np.mean([np.asarray(e["reference_outputs"], dtype=np.float64)
                                          for e in extras], axis=0)}

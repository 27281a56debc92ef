"""An ensemble's outputs and maps from its members': the mean, and the spread across members.

Pure numpy. Members are the leading axis of every input. Spreads are sample standard deviations
across members (``ddof=1``, as the scorecard summaries over several runs give them).

* a classifier: the mean of the members' softmax probabilities, the ensemble's bin its arg-max,
  each bin's probability SD and how many members' own arg-max is the ensemble's bin
  (:class:`ClassSpread`);
* a regressor: the mean predicted age, its SD, minimum and maximum (:class:`AgeSpread`);
* maps: the mean map, its per-voxel SD and the share of members whose relevance has the sign of
  the mean there (:class:`MapSpread`). The mean is linear, so for a method that conserves (each
  map sums to the output it explains) the mean map sums to the mean of the members' outputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits along the last axis (shifted by the maximum, so no overflow)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class ClassSpread:
    """A classifier ensemble's prediction of each subject.

    Attributes
    ----------
    probabilities : numpy.ndarray, shape (subjects, classes)
        The mean of the members' softmax probabilities.
    sd : numpy.ndarray, shape (subjects, classes)
        Each class's probability SD across members.
    predicted : numpy.ndarray of int, shape (subjects,)
        The arg-max of the mean probabilities.
    agreeing : numpy.ndarray of int, shape (subjects,)
        Members whose own arg-max is ``predicted``.
    """

    probabilities: np.ndarray
    sd: np.ndarray
    predicted: np.ndarray
    agreeing: np.ndarray

    @classmethod
    def of(cls, logits: np.ndarray) -> "ClassSpread":
        """From the members' logits, shape (members, subjects, classes)."""
        members = softmax(np.asarray(logits, dtype=np.float64))
        mean = members.mean(axis=0)
        predicted = mean.argmax(axis=1)
        agreeing = (members.argmax(axis=2) == predicted).sum(axis=0)
        return cls(mean, members.std(axis=0, ddof=1), predicted, agreeing)


@dataclass(frozen=True)
class AgeSpread:
    """A regressor ensemble's predicted age of each subject: mean, SD, minimum and maximum."""

    mean: np.ndarray
    sd: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, ages: np.ndarray) -> "AgeSpread":
        """From the members' predicted ages, shape (members, subjects)."""
        ages = np.asarray(ages, dtype=np.float64)
        return cls(ages.mean(axis=0), ages.std(axis=0, ddof=1), ages.min(axis=0),
                   ages.max(axis=0))


def ensemble_classes(outputs: np.ndarray, regression: bool) -> np.ndarray:
    """The class each member explains for each subject: the ensemble's predicted bin (the age
    output, 0, for a regressor); ``outputs`` shaped (members, subjects, outputs)."""
    if regression:
        return np.zeros(outputs.shape[1], dtype=np.int64)
    return ClassSpread.of(outputs).predicted


@dataclass(frozen=True)
class MapSpread:
    """Members' maps of one subject combined.

    Attributes
    ----------
    mean : numpy.ndarray
        The mean map (float64).
    sd : numpy.ndarray
        Per-voxel SD across members.
    agreement : numpy.ndarray
        Per voxel, the share of members (0–1) whose relevance has the sign of the mean there;
        0 where the mean is 0.
    """

    mean: np.ndarray
    sd: np.ndarray
    agreement: np.ndarray

    @classmethod
    def of(cls, maps: np.ndarray) -> "MapSpread":
        """From the members' maps of one subject, shape (members, *volume)."""
        maps = np.asarray(maps, dtype=np.float64)
        mean = maps.mean(axis=0)
        sign = np.sign(mean)
        agreement = np.where(sign != 0, (np.sign(maps) == sign).mean(axis=0), 0.0)
        return cls(mean, maps.std(axis=0, ddof=1), agreement)

"""Segmentation scores: the Dice overlap of predicted and true masks."""
from __future__ import annotations

import numpy as np


def dice(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Dice coefficient ``2|P ∩ T| / (|P| + |T|)`` per subject (first axis); 1 where both are empty.

    Parameters
    ----------
    predicted, true : bool or 0/1 arrays (n, *spatial)

    Returns
    -------
    float64 array (n,)
    """
    p = np.asarray(predicted, bool).reshape(len(predicted), -1)
    t = np.asarray(true, bool).reshape(len(true), -1)
    both = (p & t).sum(axis=1).astype(np.float64)
    total = (p.sum(axis=1) + t.sum(axis=1)).astype(np.float64)
    return np.where(total > 0, 2.0 * both / np.where(total > 0, total, 1.0), 1.0)


def summary(values: np.ndarray) -> dict:
    """Mean, median, min and max of per-subject scores."""
    values = np.asarray(values, np.float64)
    return {"mean": float(values.mean()), "median": float(np.median(values)),
            "min": float(values.min()), "max": float(values.max()), "n": int(len(values))}

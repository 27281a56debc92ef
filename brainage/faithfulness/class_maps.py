"""Class-discriminativeness: do the maps of the youngest and the oldest class differ?

A map that is one fixed pattern scaled by the explained output (Sixt et al. 2020: products of z⁺
matrices converge to rank one) looks the same whichever class it explains. Explaining the youngest
and the oldest class on the same subject and correlating the two maps measures this: Pearson's r of
the signed maps over the brain voxels, per subject, scored by its magnitude ``|r|`` — a rank-one map
flips sign with the logit (``r ≈ −1``), which is no more class-discriminative than ``r ≈ +1``.
Low ``|r|`` = the maps depend on the class.
"""
from __future__ import annotations

import numpy as np


def map_correlations(first: np.ndarray, second: np.ndarray, mask: np.ndarray | None = None
                     ) -> np.ndarray:
    """Pearson's r between ``first[i]`` and ``second[i]`` over ``mask`` (default all voxels).

    Maps are ``(n, *spatial[, channels])`` (channels summed when the mask is spatial); NaN where
    either map is constant over the mask.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"maps of shapes {a.shape} and {b.shape} cannot be compared")
    if mask is not None and a.shape[1:] != np.shape(mask):
        a, b = a.sum(axis=-1), b.sum(axis=-1)
    a = a[:, mask] if mask is not None else a.reshape(len(a), -1)
    b = b[:, mask] if mask is not None else b.reshape(len(b), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, (a * b).sum(axis=1) / norm, np.nan)

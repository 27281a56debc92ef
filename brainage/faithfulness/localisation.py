"""Localisation of a known ground truth (the synthetic cohort): is relevance where the effect is?

The share of positive relevance inside the voxels the generator aged divided by their share of the
brain ("relevance mass ratio", 1 = uniform), and the ROC AUC of voxel relevance against that mask.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def localisation_scores(maps: np.ndarray, mask: np.ndarray, brain: np.ndarray | None = None,
                        relevance: str = "positive", max_voxels: int | None = 200_000,
                        seed: int = 0, with_auc: bool = True) -> pd.DataFrame:
    """How well each map finds the ground-truth voxels.

    Parameters
    ----------
    maps : ndarray (batch, *spatial[, channels])
        Channels, if any, are summed.
    mask : ndarray of bool, shape ``spatial``
        The ground truth (e.g. voxels the synthetic generator aged).
    brain : ndarray of bool, shape ``spatial``, optional
        Voxels that count (default all).
    relevance : {"positive", "absolute"}
        Score voxels by ``max(R, 0)`` (evidence for the class) or ``|R|``.
    max_voxels : int or None
        The AUC uses a fixed random subset of at most this many brain voxels.
    with_auc : bool
        False skips the AUC (NaN), the slow part.

    Returns
    -------
    DataFrame
        Per map: ``mass_share`` (relevance inside the mask / relevance in the brain), ``mask_share``
        (mask voxels / brain voxels), ``mass_ratio = mass_share / mask_share`` (1: no better than a
        uniform map; ``1 / mask_share`` at most), ``auc`` (ROC AUC of voxel scores against the mask;
        0.5 = chance) and ``brain_share`` (relevance in the brain / relevance anywhere). NaN where
        the map has no relevance to share or the mask is empty or full.
    """
    mask = np.asarray(mask, dtype=bool)
    brain = np.ones(mask.shape, bool) if brain is None else np.asarray(brain, dtype=bool)
    if brain.shape != mask.shape:
        raise ValueError(f"brain mask {brain.shape} and ground-truth mask {mask.shape} differ")
    scores = voxel_scores(maps, mask.shape, relevance)
    truth = mask[brain]
    everywhere = scores.reshape(len(scores), -1).sum(axis=1)
    scores = scores[:, brain]
    mask_share = truth.mean() if truth.size else np.nan
    total = scores.sum(axis=1)
    inside = scores[:, truth].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mass_share = np.where(total > 0, inside / total, np.nan)
        brain_share = np.where(everywhere > 0, total / everywhere, np.nan)
    ratio = mass_share / mask_share if mask_share > 0 else np.full(len(scores), np.nan)
    auc = (voxel_auc(scores, truth, max_voxels, seed) if with_auc
           else np.full(len(scores), np.nan))
    return pd.DataFrame({"mass_share": mass_share, "mask_share": mask_share, "mass_ratio": ratio,
                         "auc": auc, "brain_share": brain_share})


def voxel_scores(maps: np.ndarray, spatial: tuple, relevance: str) -> np.ndarray:
    """Per voxel ``max(R, 0)`` or ``|R|`` (float64, channels summed), shape ``(batch, *spatial)``."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape[1:] != spatial:
        if maps.shape[1:-1] != spatial:
            raise ValueError(f"maps of shape {maps.shape} do not match the mask {spatial}")
        maps = maps.sum(axis=-1)
    if relevance == "positive":
        return np.maximum(maps, 0.0)
    if relevance == "absolute":
        return np.abs(maps)
    raise ValueError(f"relevance must be 'positive' or 'absolute', got {relevance!r}")


def voxel_auc(scores: np.ndarray, truth: np.ndarray, max_voxels: int | None,
              seed: int) -> np.ndarray:
    """ROC AUC of each row of ``scores`` against ``truth`` on a fixed subset of the voxels.

    NaN when the subset holds only mask or only non-mask voxels.
    """
    from sklearn.metrics import roc_auc_score

    pick = np.arange(truth.size)
    if max_voxels is not None and truth.size > max_voxels:
        pick = np.sort(np.random.default_rng(seed).choice(truth.size, int(max_voxels), replace=False))
    sub = truth[pick]
    if not (sub.any() and not sub.all()):
        return np.full(len(scores), np.nan)
    return np.array([float(roc_auc_score(sub, s[pick])) for s in scores])

"""Map profiles: how local and how subject-specific a method's maps are (seed 002's question)."""
from __future__ import annotations

import numpy as np


def map_profile(maps: np.ndarray, brain: np.ndarray | None = None, max_voxels: int | None = 100_000,
                seed: int = 0) -> dict:
    """Roughness and between-subject similarity of a set of maps (one per subject).

    ``roughness`` = mean |spatial gradient| / mean |map| inside ``brain`` (per voxel; larger =
    finer, more local detail); ``focus`` = share of brain voxels that hold half of the absolute
    relevance (smaller = more concentrated); ``between_subject_spearman`` = mean pairwise Spearman
    correlation of the absolute maps across subjects (larger = more general, the same map whoever
    the subject). Seed 002 (Grad-CAM) expects deeper layers to be more general and shallower ones
    more local; this measures it.
    """
    from scipy.stats import spearmanr

    m = np.abs(np.asarray(maps, dtype=np.float64).sum(axis=-1))
    spatial = m.shape[1:]
    brain = np.ones(spatial, bool) if brain is None else np.asarray(brain, bool)
    rough, focus = [], []
    for v in m:
        grads = np.gradient(v)
        gmag = np.sqrt(sum(g * g for g in grads))
        level = v[brain].mean()
        rough.append(gmag[brain].mean() / level if level > 0 else np.nan)
        values = np.sort(v[brain])[::-1]
        total = values.sum()
        focus.append(np.searchsorted(np.cumsum(values), 0.5 * total) / values.size
                     if total > 0 else np.nan)
    idx = np.flatnonzero(brain.ravel())
    if max_voxels is not None and idx.size > max_voxels:
        idx = np.random.default_rng(seed).choice(idx, int(max_voxels), replace=False)
    flat = m.reshape(len(m), -1)[:, idx]
    pairs = [spearmanr(flat[i], flat[j]).statistic
             for i in range(len(m)) for j in range(i + 1, len(m))
             if np.ptp(flat[i]) > 0 and np.ptp(flat[j]) > 0]
    return {"roughness": float(np.nanmean(rough)), "focus": float(np.nanmean(focus)),
            "between_subject_spearman": float(np.mean(pairs)) if pairs else float("nan")}

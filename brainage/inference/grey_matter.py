"""What the tested subjects' GM images say: a brain mask, GM volume, GM density per region."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GreyMatter:
    """GM summaries of the tested subjects, in subject order.

    Attributes
    ----------
    mean : ndarray
        Mean GM probability over the subjects on the maps' grid (for the brain mask).
    total_ml : ndarray, shape (n_subjects,)
        GM volume of each subject in mL (sum of probabilities times the voxel volume).
    density : dict
        Atlas name -> ``(n_subjects, n_regions)`` mean GM probability per region, column = the
        region's id in :class:`~brainage.inference.atlas_labels.RegionLabels` (0 = outside).
    """

    mean: np.ndarray
    total_ml: np.ndarray
    density: dict


def summarise_grey_matter(volumes, n_subjects: int, labels: list, voxel_ml: float) -> GreyMatter:
    """One pass over the subjects' GM ``volumes`` (an iterable of arrays on the maps' grid)."""
    total = np.zeros(n_subjects)
    density = {lab.atlas: np.zeros((n_subjects, len(lab.names))) for lab in labels}
    counts = {lab.atlas: np.maximum(lab.voxel_counts(), 1) for lab in labels}
    acc = None
    for i, volume in enumerate(volumes):
        gm = np.asarray(volume, dtype=np.float64)
        acc = gm.copy() if acc is None else acc + gm
        total[i] = gm.sum() * voxel_ml
        for lab in labels:
            sums = np.bincount(lab.ids.ravel(), weights=gm.ravel(), minlength=len(lab.names))
            density[lab.atlas][i] = sums / counts[lab.atlas]
    return GreyMatter((acc / n_subjects).astype(np.float32), total, density)

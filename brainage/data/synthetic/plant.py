"""A planted signal that alone decides the label: grey-matter loss in a few regions, dosed by age.

In a planted cohort (``data.synthetic.planted``) the label age decides only the plant: subject
``s`` keeps ``1 - depth * dose(age_s)`` of its grey matter in the planted regions, on the template
grid after ageing and before the subject's deformation, noise and smoothing. The ageing model is
driven by an independent nuisance age (``ageing_age`` in ``participants.tsv``), so ageing varies as
in any cohort but carries no label information (after Siegel et al. 2025, who planted a signal
that alone decides the label to check explanations against it). The planted voxels are every
template voxel with grey matter whose region (``ground_truth/regions.nii.gz``) is planted:
``ground_truth/planted.nii.gz``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from brainage.data.bins import assign_bins
from brainage.errors import DataError

DESCRIPTION = {
    "planted": "1 = template voxel with grey matter in a planted region: it keeps 1 - depth * dose of "
               "its grey matter, dose decided by the label age alone (before each subject's "
               "deformation, noise and smoothing)",
    "ageing_age": "participants.tsv column: the nuisance age that drives the ageing model (and so "
                  "age_effect.nii.gz), drawn independently of the label age",
}
"""What a planted cohort's ground truth adds, as recorded in ``cohort.json``."""


def planted_dose(ages, settings) -> np.ndarray:
    """Dose of the plant, 0 to 1, at each label age.

    Parameters
    ----------
    ages : float or array
        Label ages (the participants table's ``age``).
    settings : SyntheticSettings
        With a plant (``settings.planted``).

    Returns
    -------
    float64 array like ``ages``: ``k / (n_bins - 1)`` for age bin ``k`` (``dose=bins``), or
    ``(age - age_min) / (age_max - age_min)`` clipped to [0, 1] (``dose=linear``).
    """
    plant = settings.planted
    ages = np.asarray(ages, dtype=np.float64)
    if plant.dose == "linear":
        return np.clip((ages - settings.age_min) / (settings.age_max - settings.age_min), 0.0, 1.0)
    bins = assign_bins(np.atleast_1d(ages), plant.bin_edges).reshape(ages.shape)
    if np.any(bins < 0):
        raise DataError(f"planted dose=bins: age {float(ages[bins < 0].flat[0]):g} is outside "
                        f"data.bin_edges {list(plant.bin_edges)}")
    return bins / (len(plant.bin_edges) - 2)


def planted_regions(anatomy, plant) -> pd.DataFrame:
    """``region``, ``index``, ``voxels`` (template voxels with grey matter) of each planted region.

    Raises
    ------
    DataError
        A planted region has no grey-matter voxel on the cohort's grid.
    """
    table = anatomy.label_table.set_index("name")
    index = [int(table.loc[name, "index"]) for name in plant.regions]
    counts = [int(((anatomy.labels == i) & (anatomy.gm > 0)).sum()) for i in index]
    empty = [name for name, n in zip(plant.regions, counts) if n == 0]
    if empty:
        raise DataError(f"data.synthetic.planted.regions: {', '.join(empty)} has no grey-matter "
                        "voxel on the cohort's grid")
    return pd.DataFrame({"region": list(plant.regions), "index": index, "voxels": counts})


def planted_mask(anatomy, plant) -> np.ndarray:
    """Bool mask of the planted voxels on the anatomy's grid."""
    return np.isin(anatomy.labels, planted_regions(anatomy, plant)["index"]) & (anatomy.gm > 0)


def planted_depth(anatomy, plant, index: np.ndarray) -> np.ndarray:
    """Float32 ``depth`` at each flat voxel ``index`` that is planted, 0 at the others."""
    planted = planted_mask(anatomy, plant).ravel()[index]
    return np.where(planted, np.float32(plant.depth), np.float32(0.0)).astype(np.float32)


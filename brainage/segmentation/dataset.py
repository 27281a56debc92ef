"""The U-Net's data: GM volumes cut to the box around the structure, each subject's labels, the split.

The volumes come from the data stage (:func:`brainage.data.cohort.prepare_data`: validated, cached,
split by age bin as for training), so the cohort's cache is reused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainage.data.cohort import prepare_data
from brainage.neuro.grid import Grid
from brainage.segmentation.labels import atlas_labels, warped_labels
from brainage.segmentation.region import box_within_crop, structure_box, structure_mask


@dataclass(frozen=True)
class SegmentationData:
    """Volumes and labels in the U-Net's box.

    Attributes
    ----------
    x : float32 array (n, *box, 1)
        Grey-matter probabilities.
    y : uint8 array (n, *box)
        The structure in each subject.
    prior : uint8 array (*box)
        The structure in MNI space (the atlas, not warped).
    table : DataFrame
        ``subject_id``, ``age``, ``split`` (train/val/test) and, for NIfTI cohorts, ``path``.
    box : Grid
        The source grid with the box as its crop: maps go back to world space with it.
    warped : bool
        Whether ``y`` was carried by each subject's deformation.
    """

    x: np.ndarray
    y: np.ndarray
    prior: np.ndarray
    table: pd.DataFrame
    box: Grid
    warped: bool

    def rows(self, split: str) -> np.ndarray:
        """Row indices of one split, in table order."""
        return np.flatnonzero(self.table["split"].to_numpy() == split)


def load_segmentation_data(data_settings, settings, run_dir=None) -> SegmentationData:
    """Prepare the cohort, place the box around the structure, cut the volumes and label them.

    Parameters
    ----------
    data_settings : DataSettings
        The data config, read.
    settings : UNetSettings
    run_dir : path or None
        Where the data stage lists excluded subjects.

    Returns
    -------
    SegmentationData
    """
    prepared = prepare_data(data_settings, seed=settings.seed, run_dir=run_dir, progress=False)
    mask = structure_mask(settings.atlas, settings.labels, prepared.grid)
    box = structure_box(mask, prepared.grid, settings.crop_shape)
    inner = box_within_crop(box, prepared.grid)
    x = np.stack([np.asarray(prepared.volumes[i])[inner] for i in range(len(prepared.table))])
    ids = prepared.table["subject_id"].tolist()
    if settings.warp:
        y = warped_labels(mask, box, ids, data_settings.root)
    else:
        y = atlas_labels(mask, box, len(ids))
    columns = [c for c in ("subject_id", "age", "split", "path") if c in prepared.table.columns]
    return SegmentationData(x.astype(np.float32)[..., None], y, box.crop(mask).astype(np.uint8),
                            prepared.table[columns].reset_index(drop=True), box, settings.warp)

"""The atlas on the cohort grid: a region per voxel, so a map's relevance is summed per region."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainage.errors import ExplainError
from brainage.explaining.settings import AtlasSettings
from brainage.neuro.atlases import load_atlas
from brainage.neuro.nifti import grid_image
from brainage.neuro.regions import region_lookup, region_stats


@dataclass(frozen=True)
class AtlasIndex:
    """Dense region id per source-grid voxel (0 = outside every region), names, voxel volume."""

    ids: np.ndarray
    names: list
    voxel_ml: float

    def stats(self, full: np.ndarray) -> pd.DataFrame:
        """Per region: voxels, sum, mean, density and share of a full-grid map's relevance."""
        return region_stats(full, self.ids, self.names, self.voxel_ml)


def atlas_index(atlas: AtlasSettings, grid) -> AtlasIndex:
    """The atlas of ``atlas`` resampled onto ``grid``."""
    try:
        atlas_img, table = load_atlas(atlas.source, target_img=grid_image(grid),
                                      threshold=atlas.threshold, labels=atlas.labels)
    except Exception as exc:  # any reason the atlas cannot be read or resampled
        raise ExplainError(f"atlas {atlas.name}: {exc}") from exc
    ids, names = region_lookup(np.asarray(atlas_img.dataobj), table, atlas.merge_hemispheres)
    voxel_ml = float(abs(np.linalg.det(grid.affine[:3, :3]))) / 1000.0
    return AtlasIndex(ids, names, voxel_ml)

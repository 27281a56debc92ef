"""The voxel grid of a cohort: source affine and shape, the crop the network sees, and its inverse."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# CAT12 / PAC 2019 1.5 mm MNI152 grid (121 x 145 x 121).
MNI_1P5MM_AFFINE = np.array(
    [[-1.5, 0.0, 0.0, 90.0],
     [0.0, 1.5, 0.0, -126.0],
     [0.0, 0.0, 1.5, -72.0],
     [0.0, 0.0, 0.0, 1.0]]
)
MNI_1P5MM_SHAPE = (121, 145, 121)
# mm: how far two images' affines may differ and still be one grid (the cohort's images, a
# cohort against the grid a model was trained on, the members of an ensemble).
AFFINE_ATOL_MM = 1e-3
SEED_CROP_SHAPE = (100, 124, 104)
# Keeps the whole brain of the 1.5 mm MNI grid (Neuromorphometrics' bounding box) inside the crop.
SEED_CROP_OFFSET = (10, 10, 4)


@dataclass(frozen=True)
class Grid:
    """Source grid of the images and the box the network sees.

    Parameters
    ----------
    affine : (4, 4) array
        Voxel-to-world affine of the source images (sform).
    source_shape : tuple of int
        Shape of the source images.
    crop_offset : tuple of int
        First source voxel of the crop along each axis.
    crop_shape : tuple of int
        Shape of the cropped volume fed to the network.
    """

    affine: np.ndarray
    source_shape: tuple
    crop_offset: tuple
    crop_shape: tuple

    def __post_init__(self):
        object.__setattr__(self, "affine", np.asarray(self.affine, dtype=np.float64))
        object.__setattr__(self, "source_shape", tuple(int(s) for s in self.source_shape))
        object.__setattr__(self, "crop_offset", tuple(int(s) for s in self.crop_offset))
        object.__setattr__(self, "crop_shape", tuple(int(s) for s in self.crop_shape))
        for axis, (off, size, full) in enumerate(
            zip(self.crop_offset, self.crop_shape, self.source_shape)
        ):
            if off < 0 or off + size > full:
                raise ValueError(
                    f"crop offset {self.crop_offset} with shape {self.crop_shape} does not fit "
                    f"the source grid {self.source_shape} (axis {axis})"
                )

    @classmethod
    def build(cls, affine, source_shape, crop_shape=None, crop_offset=None) -> "Grid":
        """Grid with a crop of ``crop_shape`` (default: no crop), centred unless ``crop_offset``."""
        source_shape = tuple(int(s) for s in source_shape)
        crop_shape = tuple(int(s) for s in (crop_shape or source_shape))
        if len(crop_shape) != len(source_shape):
            raise ValueError(f"crop shape {crop_shape} and source shape {source_shape} differ in rank")
        if crop_offset is None:
            crop_offset = tuple(max((f - c) // 2, 0) for f, c in zip(source_shape, crop_shape))
        return cls(np.asarray(affine), source_shape, tuple(crop_offset), crop_shape)

    @property
    def slices(self) -> tuple:
        return tuple(slice(o, o + s) for o, s in zip(self.crop_offset, self.crop_shape))

    @property
    def cropped_affine(self) -> np.ndarray:
        """Affine of the cropped volume: voxel (0,0,0) of the crop is voxel ``crop_offset`` of the source."""
        shift = np.eye(4)
        shift[:3, 3] = self.crop_offset
        return self.affine @ shift

    def crop(self, volume: np.ndarray) -> np.ndarray:
        """Cut the network's box out of a source-grid volume (extra trailing axes are kept)."""
        return volume[self.slices]

    def uncrop(self, volume: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Put a cropped volume back on the source grid, ``fill`` outside the box."""
        volume = np.asarray(volume)
        if volume.shape[:3] != self.crop_shape:
            raise ValueError(f"volume shape {volume.shape[:3]} is not the crop shape {self.crop_shape}")
        out = np.full(self.source_shape + volume.shape[3:], fill, dtype=volume.dtype)
        out[self.slices] = volume
        return out

    def to_dict(self) -> dict:
        return {
            "affine": self.affine.tolist(),
            "source_shape": list(self.source_shape),
            "crop_offset": list(self.crop_offset),
            "crop_shape": list(self.crop_shape),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Grid":
        return cls(np.asarray(d["affine"]), d["source_shape"], d["crop_offset"], d["crop_shape"])

"""Whether a cohort is what a model was trained on: the same preprocessing, voxel size and grid.

A model applied to images on another grid, of another voxel size, or made another way (another
data format; modulated against unmodulated grey matter; a derivative made with other
preprocessing step settings) still gives numbers, and they mean nothing. Each difference is
refused with one line naming it, the cohort and the training run. The check sees the first
image before the cohort is cached (:meth:`GridCheck.check_source`) and the cohort's grid after
(:meth:`GridCheck.check_grid`), so a cohort cached earlier is checked too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainage.errors import PredictError
from brainage.neuro.grid import AFFINE_ATOL_MM, Grid
from brainage.trained import TrainedGrid
from brainage.trained.grid import changed_steps, voxel_size


@dataclass(frozen=True)
class GridCheck:
    """The training run's grid and how messages name the cohort and the run.

    Attributes
    ----------
    trained : TrainedGrid
    where : str
        The cohort as messages name it (its root or participants table).
    train_dir : str
    """

    trained: TrainedGrid
    where: str
    train_dir: str

    def _refuse(self, what: str, found, expected, fix: str) -> None:
        raise PredictError(f"{self.where}: {what} {found}, but the model of {self.train_dir} was "
                           f"trained on {expected}; {fix}")

    def check_preprocessing(self, data) -> None:
        """The cohort's data format (and ``modulated`` flag) in its data config ``data`` against
        the training run's."""
        found = TrainedGrid.of(data, self.trained.grid)
        if (found.format, found.modulated) != (self.trained.format, self.trained.modulated):
            self._refuse("preprocessing", found.preprocessing, f"{self.trained.preprocessing} data",
                         "preprocess the cohort as the training data were")
        changed = changed_steps(found.steps, self.trained.steps)
        if changed:
            self._refuse("preprocessing steps", _steps(changed, found.steps),
                         f"a derivative made with {_steps(changed, self.trained.steps)}",
                         "preprocess the cohort with the training data's step settings (make "
                         f"preprocess data.root=<raw root> {_steps(changed, self.trained.steps)} "
                         "derivatives_dir=<another folder>, and data.derivatives_dir=<that folder> here)")

    def check_source(self, shape: tuple, affine) -> None:
        """The first image's voxel size, shape and affine (None: the format carries none)."""
        expected, fix = self.trained.grid, self._resample()
        if affine is not None:
            found = voxel_size(affine)
            if not np.allclose(found, self.trained.voxel_size, atol=AFFINE_ATOL_MM):
                self._refuse("voxels of", _mm(found), f"voxels of {_mm(self.trained.voxel_size)}",
                             fix)
        if tuple(shape) != tuple(expected.source_shape):
            self._refuse("images of shape", tuple(shape), f"shape {tuple(expected.source_shape)}",
                         fix)
        if affine is not None and not np.allclose(affine, expected.affine, atol=AFFINE_ATOL_MM):
            self._refuse("images with the affine", _rows(affine),
                         f"the affine {_rows(expected.affine)}", fix)

    def _resample(self) -> str:
        if self.trained.format == "preprocessed":
            return "preprocess its raw scans with make preprocess data.root=<raw root>"
        return "resample the images to the training grid"

    def check_grid(self, grid: Grid) -> None:
        """The cohort grid (source grid and crop) against the training run's."""
        self.check_source(grid.source_shape, grid.affine)
        expected = self.trained.grid
        found = (tuple(grid.crop_offset), tuple(grid.crop_shape))
        wanted = (tuple(expected.crop_offset), tuple(expected.crop_shape))
        if found != wanted:
            self._refuse("a crop (offset, shape) of", found, f"the crop {wanted}",
                         "leave data.crop_offset and data.crop_shape as the training run had them")


def _steps(keys: list, settings: dict) -> str:
    return " ".join(f"steps.{k}={_value(settings.get(k))}" for k in keys)


def _value(value) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def _mm(size) -> str:
    return " x ".join(f"{v:g}" for v in size) + " mm"


def _rows(affine) -> list:
    return np.round(np.asarray(affine, dtype=float)[:3], 3).tolist()

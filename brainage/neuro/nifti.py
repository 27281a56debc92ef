"""Relevance maps as NIfTI files a viewer lays exactly over the subject's image."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from brainage.neuro.grid import Grid

MNI_CODE = 4  # NIFTI_XFORM_MNI_152


def reference_header(path=None, grid: Grid | None = None) -> nib.Nifti1Header:
    """Header to copy the spatial fields from: the subject's input image, else the cohort grid."""
    if path:
        try:
            return nib.load(str(path)).header.copy()
        except (FileNotFoundError, OSError):
            pass
    hdr = nib.Nifti1Header()
    if grid is not None:
        hdr.set_sform(grid.affine, code=MNI_CODE)
        hdr.set_qform(grid.affine, code=MNI_CODE)
    return hdr


def display_range(data: np.ndarray) -> tuple[float, float]:
    """cal_min/cal_max a viewer can use: symmetric for signed maps, from 0 for positive ones."""
    finite = np.abs(data[np.isfinite(data) & (data != 0)])
    if finite.size == 0:
        return 0.0, 0.0
    top = float(np.percentile(finite, 99.5))
    return (-top, top) if (data < 0).any() else (0.0, top)


def relevance_image(volume: np.ndarray, grid: Grid, header: nib.Nifti1Header | None = None,
                    descrip: str = "") -> nib.Nifti1Image:
    """A cropped relevance volume put back on the source grid with the source image's affine.

    The crop is undone (zeros outside), sform and qform with their codes come from ``header``
    (the subject's input image) so the map lies voxel for voxel over it; ``cal_min``/``cal_max``
    give a display range; the intent is a plain estimate.
    """
    full = grid.uncrop(np.asarray(volume, dtype=np.float32))
    header = header if header is not None else reference_header(grid=grid)
    sform, scode = header.get_sform(coded=True)
    qform, qcode = header.get_qform(coded=True)
    affine = sform if sform is not None else (qform if qform is not None else grid.affine)
    if not np.allclose(affine, grid.affine, atol=1e-3):
        raise ValueError(f"reference affine {np.round(affine[:3], 3).tolist()} is not the cohort "
                         f"grid's {np.round(grid.affine[:3], 3).tolist()}")
    img = nib.Nifti1Image(full, affine)
    out = img.header
    out.set_sform(sform if sform is not None else grid.affine, code=int(scode) or MNI_CODE)
    out.set_qform(qform if qform is not None else grid.affine, code=int(qcode) or MNI_CODE)
    out.set_xyzt_units(*header.get_xyzt_units())
    out.set_data_dtype(np.float32)
    out.set_intent("estimate")
    lo, hi = display_range(full)
    out["cal_min"], out["cal_max"] = lo, hi
    out["descrip"] = descrip.encode()[:79]
    return img


def save_atomic(img: nib.Nifti1Image, path) -> Path:
    """Write to a temporary name in the same folder, then rename: no half-written file remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".nii.gz", dir=path.parent)
    os.close(fd)
    try:
        nib.save(img, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def grid_image(grid: Grid, volume: np.ndarray | None = None) -> nib.Nifti1Image:
    """A cropped volume put back on the cohort grid as an image; zeros (uint8) when ``volume`` is None.

    The image an atlas is resampled onto, and a subject's background when its source file is gone.
    """
    if volume is None:
        return nib.Nifti1Image(np.zeros(grid.source_shape, dtype=np.uint8), grid.affine)
    return nib.Nifti1Image(grid.uncrop(np.asarray(volume, dtype=np.float32)), grid.affine)

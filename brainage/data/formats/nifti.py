"""``data.format: nifti``: a participants table and one NIfTI image per subject.

Each subject's image is ``data.image_template`` formatted with ``root`` and ``subject_id``
(``{root}/gm/{subject_id}_gm.nii.gz``); a template with glob characters (BIDS derivatives:
``{root}/derivatives/cat12/{subject_id}/anat/*_label-GM_probseg.nii*``) must match exactly one
file. Every failure is a :class:`DataError` naming the subject, the file and what was expected.
"""
from __future__ import annotations

import glob
import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainage.config_values import ConfigReader, text
from brainage.data.cache import file_fingerprint
from brainage.data.formats.base import DataFormat, Located, SourceGrid, register_format
from brainage.data.workers import ordered_map, resolve_workers
from brainage.errors import DataError

GLOB_CHARS = set("*?[")


@register_format("nifti")
@dataclass(frozen=True)
class NiftiTable(DataFormat):
    """One image per subject at ``image_template``; the synthetic cohort is written this way."""

    root: str | None
    image_template: str

    generates = True

    @classmethod
    def from_config(cls, data: ConfigReader) -> "NiftiTable":
        return cls(root=data.value("root", text, "the cohort folder or null", optional=True),
                   image_template=data.value("image_template", text, "a path pattern with {root} "
                                             "and {subject_id}"))

    def locate(self, subject_id: str, row: int | None) -> Located:
        try:
            path = resolve_image_path(self.image_template, self.root, subject_id)
        except DataError as exc:  # reported when the volume is opened, under the exclusion policy
            return Located(subject_id, str(exc), path="", error=exc)
        return Located(subject_id, str(path), where=path, path=str(path))

    def open_volume(self, located: Located):
        if located.error is not None:
            raise located.error
        img = load_image(located.where, located.subject_id)
        return read_image_data(img, located.where, located.subject_id), img.affine

    def cache_key(self, located: list[Located]) -> list:
        fingerprints = [file_fingerprint(loc.where) if loc.error is None and loc.where.is_file()
                        else [loc.source, None, None] for loc in located]
        return ["nifti", fingerprints]

    def source_grid(self, located: list[Located], shape: tuple, affine, workers: int | None
                    ) -> SourceGrid:
        # The grid most images share, not the first one's: an odd image is then the one blamed,
        # not every other subject.
        common = common_grid([Path(loc.path) for loc in located if loc.path], workers)
        if common is None:
            return SourceGrid(tuple(shape), affine, "the first image has")
        shape, affine, n_sharing, n_read = common
        return SourceGrid(shape, affine, f"the images ({n_sharing} of {n_read} images) have")


def resolve_image_path(template: str, root, subject_id: str) -> Path:
    """The image file of one subject: ``template`` formatted with ``root`` and ``subject_id``.

    A template with glob characters must match exactly one file.
    """
    pattern = template.format(root=str(root), subject_id=subject_id)
    if GLOB_CHARS & set(pattern):
        hits = sorted(glob.glob(pattern))
        if len(hits) != 1:
            raise DataError(
                f"{subject_id}: pattern {pattern} matches {len(hits)} files; expected exactly one"
            )
        return Path(hits[0])
    return Path(pattern)


def load_image(path, subject_id: str):
    """Load a NIfTI image header-first; errors name the subject and file.

    Returns the nibabel image (data not yet read) with a 3D shape check done.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{subject_id}: image file not found: {path}")
    try:
        img = nib.load(str(path))
    except Exception as exc:
        raise DataError(
            f"{subject_id}: cannot read {path} as NIfTI ({type(exc).__name__}: {exc}); "
            "expected a .nii or .nii.gz image"
        ) from exc
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise DataError(
            f"{subject_id}: {path} has shape {tuple(img.shape)}; expected a 3D image "
            "(a singleton 4th axis is fine)"
        )
    return img


def read_image_data(img, path, subject_id: str) -> np.ndarray:
    """Decode the voxels as float32 3D; a truncated or corrupt file becomes a DataError."""
    try:
        data = np.asarray(img.dataobj, dtype=np.float32)
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
        raise DataError(
            f"{subject_id}: {path} is truncated or corrupt ({type(exc).__name__}: {exc}); "
            "re-export the image"
        ) from exc
    return data.reshape(data.shape[:3])


def common_grid(paths, workers: int | None):
    """The shape and affine that most of the images at ``paths`` share, read from their headers.

    Images whose header cannot be read are left out (their own loading reports them). Ties go to
    the grid of the earliest image.

    Returns
    -------
    (shape, affine, n_sharing, n_read) or None
        None when no header could be read.
    """
    files = [p for p in paths if isinstance(p, Path) and p.is_file()]
    groups = []  # [shape, affine, count], in order of first appearance
    for header in ordered_map(_header_grid, files, resolve_workers(workers, max(len(files), 1))):
        if header is None:
            continue
        shape, affine = header
        for group in groups:
            if group[0] == shape and np.allclose(group[1], affine, atol=1e-3):
                group[2] += 1
                break
        else:
            groups.append([shape, affine, 1])
    if not groups:
        return None
    shape, affine, count = max(groups, key=lambda g: g[2])  # the first of the largest
    return shape, affine, count, sum(g[2] for g in groups)


def _header_grid(path: Path):
    """``(shape, affine)`` of a NIfTI file from its header, or None if unreadable or not 3D."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        shape = tuple(int(n) for n in img.shape)
        affine = np.asarray(img.affine, dtype=float)
    except Exception:  # reported with its subject when the image itself is loaded
        return None
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    return (shape, affine) if len(shape) == 3 else None

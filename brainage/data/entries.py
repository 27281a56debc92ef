"""What the cache decodes: one loader per subject, and the inputs its key depends on.

A loader reads one subject's volume and validates its values; the cache key covers every input
file (path, size, modification time) and every setting that changes the decoded volumes, so a
changed file or setting builds a new cache entry.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainage.data import io
from brainage.data.cache import Entry, file_fingerprint
from brainage.data.workers import ordered_map, resolve_workers
from brainage.errors import DataError


def _key_text(value):
    """Lists enter the key in the text form that caches built before the settings object carry."""
    if value is None:
        return None
    return str([list(v) if isinstance(v, tuple) else v for v in value])


def _common_inputs(settings) -> list:
    """The settings every cache key depends on, whatever the format."""
    return [list(settings.value_range), settings.value_tolerance, _key_text(settings.source_shape),
            _key_text(settings.crop_shape), _key_text(settings.crop_offset),
            _key_text(settings.affine)]


def check_stack_rows(npy_path, table_path, n_rows: int) -> None:
    """The stacked array and its ages table must have the same number of rows (row i of the
    table is volume i of the array): either having more is an error naming both files.

    Raises
    ------
    DataError
    """
    n_volumes = len(io.open_npy_stack(npy_path))
    if n_volumes != n_rows:
        more, fewer = ((f"{npy_path} holds {n_volumes} volumes", f"{table_path} {n_rows} rows")
                       if n_volumes > n_rows else
                       (f"{table_path} has {n_rows} rows", f"{npy_path} {n_volumes} volumes"))
        raise DataError(f"{more} but {fewer}; the ages table and the stacked array must match "
                        "row by row (row i of the table is volume i of the array)")


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


def npy_entries(settings, table: pd.DataFrame) -> tuple[list, list]:
    """Loaders of the rows ``table["_row"]`` of the stacked array ``settings.npy_path``.

    Returns
    -------
    entries : list of Entry
    key_inputs : list
    """
    npy_path = settings.npy_path
    stack = io.open_npy_stack(npy_path)
    value_range, tol = settings.value_range, settings.value_tolerance

    def loader(sid, row):
        def load():
            data = np.asarray(stack[row], dtype=np.float32)
            io.check_values(data, f"{npy_path}[{row}]", sid, value_range, tol)
            return data, None
        return load

    entries = [Entry(sid, f"{npy_path}[{row}]", loader(sid, row))
               for sid, row in zip(table["subject_id"], table["_row"])]
    return entries, ["npy", file_fingerprint(npy_path), table["subject_id"].tolist(),
                     table["_row"].tolist(), _common_inputs(settings)]


def nifti_entries(settings, table: pd.DataFrame) -> tuple[list, list, list]:
    """Loaders of each subject's NIfTI image found by ``settings.image_template``.

    A subject whose image cannot be found gets a loader that raises why, so the exclusion policy
    decides what happens to it.

    Returns
    -------
    entries : list of Entry
    key_inputs : list
    paths : list of str
        The image of each row of ``table`` ("" when none was found).
    """
    paths, fingerprints = [], []
    for sid in table["subject_id"]:
        try:
            path = io.resolve_image_path(settings.image_template, settings.root, sid)
        except DataError as exc:
            path = exc  # reported when the entry is loaded, under the exclusion policy
        paths.append(path)
        fingerprints.append(file_fingerprint(path) if isinstance(path, Path) and path.is_file()
                            else [str(path), None, None])
    value_range, tol = settings.value_range, settings.value_tolerance

    def loader(sid, path):
        def load():
            if isinstance(path, DataError):
                raise path
            img = io.load_image(path, sid)
            data = io.read_image_data(img, path, sid)
            io.check_values(data, path, sid, value_range, tol)
            return data, img.affine
        return load

    entries = [Entry(sid, str(p), loader(sid, p)) for sid, p in zip(table["subject_id"], paths)]
    shown = [str(p) if isinstance(p, Path) else "" for p in paths]
    return entries, ["nifti", fingerprints, _common_inputs(settings)], shown

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


def npy_entries(settings, table: pd.DataFrame) -> tuple[list, list]:
    """Loaders of the rows ``table["_row"]`` of the stacked array ``settings.npy_path``.

    Returns
    -------
    entries : list of Entry
    key_inputs : list
    """
    npy_path = settings.npy_path
    stack = io.open_npy_stack(npy_path)
    if len(stack) < int(np.max(table["_row"].to_numpy(), initial=-1)) + 1:
        raise DataError(f"{npy_path} holds {len(stack)} volumes but the ages table "
                        f"{settings.participants} has more rows; they must match row by row")
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

"""Decode every volume once into a memory-mapped array, keyed by the inputs.

Layout of one cache entry ``<cache_dir>/<key>/``:
``volumes.npy`` (rows × crop shape, float16 or float32, opened with ``mmap_mode="r"``),
``index.csv`` (subject_id, row), ``exclusions.csv`` (subject_id, path, reason) and
``meta.json`` (grid, dtype, inputs), written last and renamed into place so that an
interrupted build is never mistaken for a complete one.

Precision: float16 keeps values in [0, 1] to within 2**-12 ≈ 2.4e-4 (half the float16 spacing
below 1.0); float32 is exact for float32 inputs.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from brainage.data.workers import ordered_map, resolve_workers
from brainage.errors import DataError
from brainage.neuro.grid import AFFINE_ATOL_MM, Grid

CACHE_VERSION = 1
DTYPES = {"float16": np.float16, "float32": np.float32}


def file_fingerprint(path) -> list:
    """Path, size and modification time: a changed file gets a new cache key."""
    st = os.stat(path)
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def cache_key(inputs) -> str:
    blob = json.dumps([CACHE_VERSION, inputs], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


@dataclass
class CachedVolumes:
    """A complete cache entry."""

    path: Path
    volumes: np.ndarray  # read-only memmap
    index: pd.DataFrame  # subject_id, row
    exclusions: pd.DataFrame
    grid: Grid
    dtype: str


def open_cache(path) -> CachedVolumes | None:
    """The cache entry at ``path`` if complete, else None."""
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    return CachedVolumes(
        path=path,
        volumes=np.load(path / "volumes.npy", mmap_mode="r"),
        index=pd.read_csv(path / "index.csv", dtype={"subject_id": str}),
        exclusions=pd.read_csv(path / "exclusions.csv", dtype={"subject_id": str}).fillna(""),
        grid=Grid.from_dict(meta["grid"]),
        dtype=meta["dtype"],
    )


@dataclass
class Entry:
    """One subject to decode: ``load()`` returns ``(volume_on_source_grid, affine_or_None)``."""

    subject_id: str
    source: str
    load: Callable[[], tuple]


def build_cache(entries: Iterable[Entry], n_entries: int, cache_root, key_inputs, make_grid,
                dtype: str = "float16", on_bad: str = "fail", progress: bool = True,
                workers: int | None = 1) -> CachedVolumes:
    """Decode, validate (via ``entry.load``), crop and store every entry, or reuse a built cache.

    Parameters
    ----------
    entries : iterable of Entry
        ``load`` raises :class:`DataError` for a bad subject.
    make_grid : callable(volume, affine) -> Grid
        Builds the cohort grid from the first good volume; later volumes must match it.
    on_bad : {"fail", "exclude"}
        Raise on the first bad subject, or leave it out and record why.
    workers : int or None
        Threads running ``entry.load`` (decompression and validation release the GIL); None =
        every available core. Volumes are stored in entry order: the cache does not depend on it.
    """
    if dtype not in DTYPES:
        raise DataError(f"data.cache.dtype={dtype!r}; expected one of {sorted(DTYPES)}")
    cache_root = Path(cache_root)
    final = cache_root / cache_key([key_inputs, dtype])
    cached = open_cache(final)
    if cached is not None:
        if on_bad == "fail" and len(cached.exclusions):
            row = cached.exclusions.iloc[0]
            raise DataError(str(row["reason"]))
        return cached

    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=cache_root))
    try:
        loaded = ordered_map(_load, entries, resolve_workers(workers, n_entries))
        grid, rows, excluded = _write_volumes(loaded, n_entries, tmp, make_grid, dtype, on_bad,
                                              progress)
        _write_tables(tmp, grid, rows, excluded, n_entries, dtype, key_inputs)
        if final.exists():  # built meanwhile by another process: keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return open_cache(final)


def _load(entry: Entry) -> tuple:
    """``(entry, (volume, affine))``, or ``(entry, DataError)`` for a bad subject."""
    try:
        return entry, entry.load()
    except DataError as exc:
        return entry, exc


class EveryoneExcluded(DataError):
    """Every subject was excluded; ``exclusions`` lists them (subject_id, path, reason)."""

    def __init__(self, message: str, exclusions: list):
        super().__init__(message)
        self.exclusions = pd.DataFrame(exclusions, columns=["subject_id", "path", "reason"])


def _write_volumes(loaded, n_entries, tmp: Path, make_grid, dtype, on_bad, progress):
    """Store each good volume's crop in ``tmp/volumes.npy``, in order; the bad ones fail or go aside.

    The grid comes from ``make_grid`` at the first good volume; a grid the settings cannot give
    is an error whatever ``on_bad`` says (it is no subject's fault). Returns the grid, the rows
    written (subject_id, row) and the exclusions.
    """
    from tqdm.auto import tqdm

    grid = volumes = None
    rows, excluded = [], []
    bar = tqdm(loaded, total=n_entries, desc="caching volumes", unit="vol", disable=not progress)
    for entry, outcome in bar:
        try:
            if isinstance(outcome, DataError):
                raise outcome
            data, affine = outcome
            if grid is None:
                grid = _first_grid(make_grid, data, affine)
                volumes = np.lib.format.open_memmap(
                    tmp / "volumes.npy", mode="w+", dtype=DTYPES[dtype],
                    shape=(n_entries,) + grid.crop_shape,
                )
            _check_grid(entry, data, affine, grid)
        except _GridSettingsError as exc:
            raise DataError(str(exc)) from exc
        except DataError as exc:
            if on_bad == "fail":
                raise
            excluded.append({"subject_id": entry.subject_id, "path": entry.source,
                             "reason": str(exc)})
            continue
        volumes[len(rows)] = grid.crop(data)
        rows.append({"subject_id": entry.subject_id, "row": len(rows)})
    bar.close()
    if grid is None:
        if excluded:
            raise EveryoneExcluded(f"no usable volume: all {len(excluded)} subject(s) were "
                                   f"excluded (see exclusions.csv and the log); the first: "
                                   f"{excluded[0]['reason']}", excluded)
        raise DataError("the cohort is empty: no subjects to load")
    volumes.flush()
    return grid, rows, excluded


class _GridSettingsError(Exception):
    """A DataError of ``make_grid``: the settings' fault, never excluded with a subject."""


def _first_grid(make_grid, data, affine) -> Grid:
    try:
        return make_grid(data, affine)
    except DataError as exc:
        raise _GridSettingsError(str(exc)) from exc


def _write_tables(tmp: Path, grid: Grid, rows: list, excluded: list, n_entries: int, dtype: str,
                  key_inputs) -> None:
    """Shrink ``volumes.npy`` to the rows written; write the index, the exclusions, ``meta.json`` last."""
    if len(rows) < n_entries:  # shrink the file to the rows actually written
        full = np.load(tmp / "volumes.npy", mmap_mode="r")
        part = np.lib.format.open_memmap(tmp / "volumes.part.npy", mode="w+", dtype=full.dtype,
                                         shape=(len(rows),) + full.shape[1:])
        part[:] = full[:len(rows)]
        part.flush()
        del part, full
        os.replace(tmp / "volumes.part.npy", tmp / "volumes.npy")
    pd.DataFrame(rows, columns=["subject_id", "row"]).to_csv(tmp / "index.csv", index=False)
    pd.DataFrame(excluded, columns=["subject_id", "path", "reason"]).to_csv(
        tmp / "exclusions.csv", index=False)
    meta = {"version": CACHE_VERSION, "dtype": dtype, "grid": grid.to_dict(), "inputs": key_inputs}
    (tmp / "meta.json").write_text(json.dumps(meta, default=str))


def _check_grid(entry: Entry, data: np.ndarray, affine, grid: Grid) -> None:
    if tuple(data.shape) != grid.source_shape:
        raise DataError(
            f"{entry.subject_id}: image shape {tuple(data.shape)} does not match the cohort grid "
            f"{grid.source_shape} ({entry.source})"
        )
    if affine is not None and not np.allclose(affine, grid.affine, atol=AFFINE_ATOL_MM):
        raise DataError(
            f"{entry.subject_id}: affine of {entry.source} differs from the cohort's "
            f"(expected {np.round(grid.affine[:3], 3).tolist()}, "
            f"found {np.round(np.asarray(affine)[:3], 3).tolist()}); resample it to the cohort grid"
        )


class RowSubset:
    """Rows ``rows`` of a (memory-mapped) array, indexable like an array; reads stay lazy."""

    def __init__(self, array, rows):
        self.array = array
        self.rows = np.asarray(rows, dtype=np.int64)

    @property
    def shape(self):
        return (len(self.rows),) + tuple(self.array.shape[1:])

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def ndim(self):
        return self.array.ndim

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, item):
        if isinstance(item, tuple):
            first, rest = item[0], item[1:]
            return np.asarray(self.array[self.rows[first]])[(slice(None),) + rest] \
                if not np.isscalar(first) else np.asarray(self.array[self.rows[first]])[rest]
        return np.asarray(self.array[self.rows[item]])

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.array[self.rows])
        return out if dtype is None else out.astype(dtype)

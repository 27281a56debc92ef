"""The data stage: participants + images → validated, cached, binned, balanced and split cohort."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.data import io
from brainage.data.cache import Entry, RowSubset, build_cache, file_fingerprint
from brainage.errors import DataError
from brainage.neuro.grid import MNI_1P5MM_AFFINE, Grid
from brainage.data.prepared import PreparedData

log = logging.getLogger(__name__)

BALANCE_METHODS = ("downsample", "none", "class_weights")


def assign_bins(ages, edges) -> np.ndarray:
    """Bin index of each age for half-open bins ``[edges[k], edges[k+1])``; -1 outside."""
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or len(edges) < 3 or np.any(np.diff(edges) <= 0):
        raise DataError(f"data.bin_edges={edges.tolist()}; expected at least 3 increasing edges "
                        "(two or more bins), e.g. [10, 40, 70, 101]")
    ages = np.asarray(ages, dtype=float)
    bins = np.searchsorted(edges, ages, side="right") - 1
    bins[(ages < edges[0]) | (ages >= edges[-1]) | ~np.isfinite(ages)] = -1
    return bins


def bin_labels(bin_edges) -> list:
    """``[10, 40, 70, 101]`` -> ``['10-39', '40-69', '70-100']`` (integer ages), else ``[a, b)``."""
    edges = [float(e) for e in bin_edges]
    if all(e.is_integer() for e in edges):
        return [f"{int(lo)}-{int(hi) - 1}" for lo, hi in zip(edges[:-1], edges[1:])]
    return [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges[:-1], edges[1:])]


def balance_bins(bins, method: str = "downsample", seed: int = 0):
    """Rows to keep and optional class weights.

    ``downsample`` keeps a seeded random subset of every bin the size of the smallest (seed 000);
    ``none`` keeps all; ``class_weights`` keeps all and weights bin k by ``n / (n_bins · n_k)``.

    Returns
    -------
    keep : array of int (sorted row indices)
    class_weights : dict or None
    """
    if method not in BALANCE_METHODS:
        raise DataError(f"data.balance={method!r}; expected one of {BALANCE_METHODS}")
    bins = np.asarray(bins)
    labels, counts = np.unique(bins, return_counts=True)
    if method == "none":
        return np.arange(len(bins)), None
    if method == "class_weights":
        weights = {int(k): float(len(bins) / (len(labels) * c)) for k, c in zip(labels, counts)}
        return np.arange(len(bins)), weights
    rng = np.random.default_rng(seed)
    smallest = counts.min()
    keep = [rng.choice(np.flatnonzero(bins == k), size=smallest, replace=False) for k in labels]
    return np.sort(np.concatenate(keep)), None


def stratified_split(bins, fractions=(0.70, 0.15, 0.15), seed: int = 0, edges=None) -> np.ndarray:
    """Seeded split label ("train"/"val"/"test") per row, stratified by bin.

    Each bin is shuffled and cut by the fractions (rounded, at least one subject in every split
    whose fraction is positive); a bin too small for that is an error naming it.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or np.any(fractions < 0) or fractions[0] <= 0 \
            or not np.isclose(fractions.sum(), 1.0):
        raise DataError(f"data.split={fractions.tolist()}; expected three fractions "
                        "(train, val, test) summing to 1, e.g. [0.7, 0.15, 0.15]")
    bins = np.asarray(bins)
    out = np.empty(len(bins), dtype=object)
    rng = np.random.default_rng(seed)
    need = int((fractions > 0).sum())
    for k in np.unique(bins):
        rows = rng.permutation(np.flatnonzero(bins == k))
        n = len(rows)
        n_val = max(int(round(n * fractions[1])), 1) if fractions[1] > 0 else 0
        n_test = max(int(round(n * fractions[2])), 1) if fractions[2] > 0 else 0
        if n - n_val - n_test < 1:
            label = f"bin {k}" + (f" (ages {edges[k]:g}–{edges[k + 1]:g})" if edges is not None else "")
            raise DataError(f"{label} has {n} subject(s); the split {fractions.tolist()} needs at "
                            f"least {need} per bin — add subjects or change data.split/bin_edges")
        out[rows[:n_test]] = "test"
        out[rows[n_test:n_test + n_val]] = "val"
        out[rows[n_test + n_val:]] = "train"
    return out


def _get(cfg, key, default=None):
    try:
        value = cfg[key]
    except (KeyError, AttributeError):
        return default
    return default if value is None else value


def _seed_of(cfg, seed):
    split_seed = _get(cfg, "split_seed")
    return int(seed if split_seed is None else split_seed)


def prepare_data(cfg, seed: int = 0, run_dir=None, progress: bool = True) -> PreparedData:
    """Run the data stage from a ``configs/data/*.yaml``-shaped config.

    Generates the synthetic cohort when configured and missing, reads the participants table,
    validates and caches every image, assigns age bins, balances and splits. Raises
    :class:`DataError` with a message naming the subject, file and what was expected; with
    ``on_bad_subject=exclude`` bad subjects are left out and listed in ``run_dir/exclusions.csv``.
    """
    fmt = _get(cfg, "format", "nifti")
    on_bad = _get(cfg, "on_bad_subject", "fail")
    if on_bad not in ("fail", "exclude"):
        raise DataError(f"data.on_bad_subject={on_bad!r}; expected 'fail' or 'exclude'")
    edges = list(_get(cfg, "bin_edges", [10, 40, 70, 101]))
    assign_bins([], edges)  # validates the edges before any slow work
    split_seed = _seed_of(cfg, seed)

    if fmt == "nifti" and _get(cfg, "generate", False):
        from brainage.data.synthetic import ensure_cohort

        ensure_cohort(cfg)
    if fmt not in ("nifti", "npy"):
        raise DataError(f"data.format={fmt!r}; expected 'nifti' or 'npy'")

    table = io.read_participants(_get(cfg, "participants"), require_id=(fmt != "npy"))
    n_subjects = _get(cfg, "n_subjects")
    if n_subjects is not None and int(n_subjects) < len(table):
        pick = np.random.default_rng(split_seed).choice(len(table), int(n_subjects), replace=False)
        table = table.iloc[np.sort(pick)]
    table = table.reset_index(drop=True)
    if fmt == "npy":
        table["_row"] = np.arange(len(table))  # rows of the stack follow the original table order

    # Table-level problems: ages.
    problems = []
    bins = assign_bins(table["age"], edges)
    for i, row in table.iterrows():
        why = io.age_problem(row["age_raw"], row["age"])
        if why is None and bins[i] < 0:
            why = f"age {row['age']:g} outside the age bins [{edges[0]:g}, {edges[-1]:g})"
        if why is not None:
            problems.append({"subject_id": row["subject_id"], "path": "", "reason":
                             f"{row['subject_id']}: {why} in {_get(cfg, 'participants')}"})
    if problems and on_bad == "fail":
        raise DataError(problems[0]["reason"])
    bad_ids = {p["subject_id"] for p in problems}
    table = table[~table["subject_id"].isin(bad_ids)].reset_index(drop=True)

    entries, key_inputs = _entries(cfg, fmt, table)
    cache_cfg = _get(cfg, "cache", {})
    cached = build_cache(
        entries, len(table), _get(cache_cfg, "dir", "data/cache"), key_inputs,
        make_grid=lambda data, affine: _make_grid(cfg, data.shape, affine),
        dtype=_get(cache_cfg, "dtype", "float16"), on_bad=on_bad, progress=progress,
    )
    exclusions = pd.concat(
        [pd.DataFrame(problems, columns=["subject_id", "path", "reason"]), cached.exclusions],
        ignore_index=True,
    )
    table = table.merge(cached.index, on="subject_id", how="inner")
    table["bin"] = assign_bins(table["age"], edges)

    keep, class_weights = balance_bins(table["bin"].to_numpy(), _get(cfg, "balance", "downsample"),
                                       split_seed)
    table = table.iloc[keep].reset_index(drop=True)
    table["split"] = stratified_split(table["bin"].to_numpy(), list(_get(cfg, "split")),
                                      split_seed, edges)
    missing = [k for k in range(len(edges) - 1) if not (table["bin"] == k).any()]
    if missing:
        raise DataError(f"age bin(s) {missing} have no subjects after validation; "
                        f"check the ages or data.bin_edges={edges}")

    if len(exclusions):
        log.warning("excluded %d subject(s); see exclusions.csv", len(exclusions))
        for reason in exclusions["reason"][:10]:
            log.warning("  %s", reason)
        if run_dir is not None:
            exclusions.to_csv(Path(run_dir) / "exclusions.csv", index=False)

    columns = [c for c in ("subject_id", "age", "bin", "split", "sex", "site", "path")
               if c in table.columns]
    return PreparedData(
        volumes=RowSubset(cached.volumes, table["row"].to_numpy()),
        table=table[columns].copy(),
        grid=cached.grid,
        bin_edges=edges,
        class_weights=class_weights,
        exclusions=exclusions,
    )


def _make_grid(cfg, shape, affine) -> Grid:
    source_shape = _get(cfg, "source_shape") or shape
    if tuple(source_shape) != tuple(shape):
        raise DataError(f"the first image has shape {tuple(shape)}; data.source_shape expects "
                        f"{tuple(source_shape)} (set data.source_shape=null to take the images' grid)")
    crop_shape = _get(cfg, "crop_shape") or shape
    if any(c > s for c, s in zip(crop_shape, shape)):
        raise DataError(f"data.crop_shape={list(crop_shape)} is larger than the images "
                        f"{tuple(shape)}")
    if affine is None:
        affine = _get(cfg, "affine")
        affine = MNI_1P5MM_AFFINE if affine is None else np.asarray(affine, dtype=float)
    offset = _get(cfg, "crop_offset")
    if offset is not None and any(o + c > s for o, c, s in zip(offset, crop_shape, shape)):
        raise DataError(f"data.crop_offset={list(offset)} with crop_shape={list(crop_shape)} "
                        f"does not fit images of shape {tuple(shape)}")
    return Grid.build(affine, shape, crop_shape, offset)


def _entries(cfg, fmt: str, table: pd.DataFrame):
    """Loaders for every subject, and what the cache key depends on."""
    value_range = list(_get(cfg, "value_range", [0.0, 1.0]))
    tol = float(_get(cfg, "value_tolerance", 0.05))
    common = [value_range, tol, _get(cfg, "source_shape"), _get(cfg, "crop_shape"),
              _get(cfg, "crop_offset"), _get(cfg, "affine")]
    if fmt == "npy":
        npy_path = _get(cfg, "npy_path")
        stack = io.open_npy_stack(npy_path)
        if len(stack) < int(np.max(table["_row"].to_numpy(), initial=-1)) + 1:
            raise DataError(f"{npy_path} holds {len(stack)} volumes but the ages table "
                            f"{_get(cfg, 'participants')} has more rows; they must match row by row")

        def loader(sid, row):
            def load():
                data = np.asarray(stack[row], dtype=np.float32)
                io.check_values(data, f"{npy_path}[{row}]", sid, value_range, tol)
                return data, None
            return load

        entries = [Entry(sid, f"{npy_path}[{row}]", loader(sid, row))
                   for sid, row in zip(table["subject_id"], table["_row"])]
        return entries, ["npy", file_fingerprint(npy_path), table["subject_id"].tolist(),
                         table["_row"].tolist(), common]

    root = _get(cfg, "root")
    template = _get(cfg, "image_template")
    paths, fingerprints = [], []
    for sid in table["subject_id"]:
        try:
            path = io.resolve_image_path(template, root, sid)
        except DataError as exc:
            path = exc  # reported when the entry is loaded, under the exclusion policy
        paths.append(path)
        fingerprints.append(file_fingerprint(path) if isinstance(path, Path) and path.is_file()
                            else [str(path), None, None])
    table["path"] = [str(p) if isinstance(p, Path) else "" for p in paths]

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
    return entries, ["nifti", fingerprints, common]

"""The data stage: participants + images → validated, cached, binned, balanced and split cohort.

:func:`prepare_data` reads the data config once into :class:`~brainage.data.settings.DataSettings`
and runs its steps in order: generate the synthetic cohort if asked, read the participants table,
set aside subjects with unusable ages, decode and validate every image into the cache, bin,
balance and split.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.data import io
from brainage.data.bins import (
    BALANCE_METHODS, assign_bins, balance_bins, bin_labels, stratified_split,
)
from brainage.data.cache import RowSubset, build_cache
from brainage.data.entries import nifti_entries, npy_entries
from brainage.data.prepared import PreparedData
from brainage.data.settings import DataSettings
from brainage.errors import DataError
from brainage.neuro.grid import MNI_1P5MM_AFFINE, Grid

__all__ = ["prepare_data", "cohort_grid",
           # The binning steps, defined in brainage.data.bins, keep their import path here.
           "BALANCE_METHODS", "assign_bins", "balance_bins", "bin_labels", "stratified_split"]

log = logging.getLogger(__name__)

EXCLUSION_COLUMNS = ["subject_id", "path", "reason"]
OUTPUT_COLUMNS = ("subject_id", "age", "bin", "split", "sex", "site", "path")


def prepare_data(cfg, seed: int = 0, run_dir=None, progress: bool = True) -> PreparedData:
    """Run the data stage from a ``configs/data/*.yaml``-shaped config.

    Generates the synthetic cohort when configured and missing, reads the participants table,
    validates and caches every image, assigns age bins, balances and splits. Raises
    :class:`DataError` with a message naming the subject, file and what was expected; with
    ``on_bad_subject=exclude`` bad subjects are left out and listed in ``run_dir/exclusions.csv``.

    Parameters
    ----------
    cfg : DictConfig, mapping or DataSettings
        The data config (every key of ``configs/data/synthetic.yaml``), or settings read from one.
    seed : int
        Seeds subsampling, balancing and the split when ``split_seed`` is null.
    run_dir : str, Path or None
        Where ``exclusions.csv`` goes when subjects were excluded.
    progress : bool
        Progress bars while generating and caching.

    Returns
    -------
    PreparedData
    """
    settings = cfg if isinstance(cfg, DataSettings) else DataSettings.from_cfg(cfg)
    split_seed = int(seed if settings.split_seed is None else settings.split_seed)
    if settings.synthetic is not None:
        from brainage.data.synthetic import ensure_cohort

        ensure_cohort(settings.synthetic, progress=progress)
    table = _read_participants(settings, split_seed)
    table, problems = _set_aside_bad_ages(table, settings)
    table, cached = _cache_volumes(table, settings, progress)
    exclusions = pd.concat([pd.DataFrame(problems, columns=EXCLUSION_COLUMNS), cached.exclusions],
                           ignore_index=True)
    table = table.merge(cached.index, on="subject_id", how="inner")
    table, class_weights = _bin_balance_split(table, settings, split_seed)
    _report_exclusions(exclusions, run_dir)
    return PreparedData(
        volumes=RowSubset(cached.volumes, table["row"].to_numpy()),
        table=table[[c for c in OUTPUT_COLUMNS if c in table.columns]].copy(),
        grid=cached.grid,
        bin_edges=list(settings.bin_edges),
        class_weights=class_weights,
        exclusions=exclusions,
    )


def _read_participants(settings: DataSettings, split_seed: int) -> pd.DataFrame:
    """The participants table, subsampled (seeded) to ``n_subjects`` when that is fewer."""
    table = io.read_participants(settings.participants, require_id=(settings.format != "npy"))
    n_subjects = settings.n_subjects
    if n_subjects is not None and n_subjects < len(table):
        pick = np.random.default_rng(split_seed).choice(len(table), n_subjects, replace=False)
        table = table.iloc[np.sort(pick)]
    table = table.reset_index(drop=True)
    if settings.format == "npy":
        table["_row"] = np.arange(len(table))  # rows of the stack follow the original table order
    return table


def _set_aside_bad_ages(table: pd.DataFrame, settings: DataSettings) -> tuple[pd.DataFrame, list]:
    """Rows with a missing, non-numeric or out-of-bins age: an error, or set aside as exclusions."""
    edges = settings.bin_edges
    problems = []
    bins = assign_bins(table["age"], edges)
    for i, row in table.iterrows():
        why = io.age_problem(row["age_raw"], row["age"])
        if why is None and bins[i] < 0:
            why = f"age {row['age']:g} outside the age bins [{edges[0]:g}, {edges[-1]:g})"
        if why is not None:
            problems.append({"subject_id": row["subject_id"], "path": "", "reason":
                             f"{row['subject_id']}: {why} in {settings.participants}"})
    if problems and settings.on_bad_subject == "fail":
        raise DataError(problems[0]["reason"])
    bad_ids = {p["subject_id"] for p in problems}
    return table[~table["subject_id"].isin(bad_ids)].reset_index(drop=True), problems


def _cache_volumes(table: pd.DataFrame, settings: DataSettings, progress: bool):
    """Every subject's volume decoded, validated and cropped into the cache (or the cache reused).

    Returns the table (with each subject's ``path`` for NIfTI data) and the cache entry.
    """
    if settings.format == "npy":
        entries, key_inputs = npy_entries(settings, table)
    else:
        entries, key_inputs, paths = nifti_entries(settings, table)
        table["path"] = paths
    cached = build_cache(
        entries, len(table), settings.cache.dir, key_inputs,
        make_grid=lambda data, affine: cohort_grid(settings, data.shape, affine),
        dtype=settings.cache.dtype, on_bad=settings.on_bad_subject, progress=progress,
        workers=settings.cache.workers,
    )
    return table, cached


def _bin_balance_split(table: pd.DataFrame, settings: DataSettings, split_seed: int):
    """Age bins, the balanced subset and the stratified split; every bin must keep subjects."""
    edges = list(settings.bin_edges)
    table["bin"] = assign_bins(table["age"], edges)
    keep, class_weights = balance_bins(table["bin"].to_numpy(), settings.balance, split_seed)
    table = table.iloc[keep].reset_index(drop=True)
    table["split"] = stratified_split(table["bin"].to_numpy(), list(settings.split), split_seed,
                                      edges)
    missing = [k for k in range(len(edges) - 1) if not (table["bin"] == k).any()]
    if missing:
        raise DataError(f"age bin(s) {missing} have no subjects after validation; "
                        f"check the ages or data.bin_edges={edges}")
    return table, class_weights


def _report_exclusions(exclusions: pd.DataFrame, run_dir) -> None:
    """Log the excluded subjects and write them to ``run_dir/exclusions.csv``."""
    if not len(exclusions):
        return
    log.warning("excluded %d subject(s); see exclusions.csv", len(exclusions))
    for reason in exclusions["reason"][:10]:
        log.warning("  %s", reason)
    if run_dir is not None:
        exclusions.to_csv(Path(run_dir) / "exclusions.csv", index=False)


def cohort_grid(settings: DataSettings, shape, affine) -> Grid:
    """The cohort's grid from the first good image (``shape``, ``affine``) and the crop settings.

    ``affine`` is None for stacked arrays: ``data.affine``, or the 1.5 mm MNI grid.
    """
    source_shape = settings.source_shape or shape
    if tuple(source_shape) != tuple(shape):
        raise DataError(f"the first image has shape {tuple(shape)}; data.source_shape expects "
                        f"{tuple(source_shape)} (set data.source_shape=null to take the images' grid)")
    crop_shape = settings.crop_shape or shape
    if any(c > s for c, s in zip(crop_shape, shape)):
        raise DataError(f"data.crop_shape={list(crop_shape)} is larger than the images "
                        f"{tuple(shape)}")
    if affine is None:
        affine = MNI_1P5MM_AFFINE if settings.affine is None else np.asarray(settings.affine,
                                                                              dtype=float)
    offset = settings.crop_offset
    if offset is not None and any(o + c > s for o, c, s in zip(offset, crop_shape, shape)):
        raise DataError(f"data.crop_offset={list(offset)} with crop_shape={list(crop_shape)} "
                        f"does not fit images of shape {tuple(shape)}")
    return Grid.build(affine, shape, crop_shape, offset)

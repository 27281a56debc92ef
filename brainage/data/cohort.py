"""The data stage: participants + images → validated, cached, binned, balanced and split cohort.

:func:`prepare_data` reads the data config once into :class:`~brainage.data.settings.DataSettings`
and runs its steps in order: generate the synthetic cohort if asked, read the participants table,
set aside subjects with unusable ages, decode and validate every image into the cache, bin,
balance and split. A subject whose age is unknown (an empty or ``n/a`` cell) is left out of
training whatever ``on_bad_subject`` says, and listed in the log and ``exclusions.csv``; ``make
predict`` predicts such subjects (:mod:`brainage.data.whole_cohort`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from brainage.data import io
from brainage.data.bins import (
    BALANCE_METHODS,
    assign_bins,
    balance_bins,
    bin_labels,
    bin_too_small,
    split_sizes,
    stratified_split,
)
from brainage.data.cache import EveryoneExcluded, RowSubset, build_cache
from brainage.data.entries import cache_entries, locate_all
from brainage.data.formats import SourceGrid
from brainage.data.prepared import PreparedData
from brainage.data.real_plant import ensure_planted_real
from brainage.data.settings import DataSettings
from brainage.data.synthetic import ensure_cohort
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
    if settings.plant_into is not None:
        ensure_planted_real(settings.plant_into, settings.root, progress=progress)
    elif settings.synthetic is not None:
        ensure_cohort(settings.synthetic, progress=progress)
    table, source = read_table(settings, split_seed)
    table, problems = _set_aside_bad_ages(table, settings, source)
    problems = pd.DataFrame(problems, columns=EXCLUSION_COLUMNS)
    try:
        table, cached = cache_volumes(table, settings, progress)
    except EveryoneExcluded as exc:  # listed where the user looks, then the run fails
        report_exclusions(pd.concat([problems, exc.exclusions], ignore_index=True), run_dir)
        raise
    exclusions = pd.concat([problems, cached.exclusions], ignore_index=True)
    # Reported before binning, so that they are listed even when a later step fails.
    report_exclusions(exclusions, run_dir)
    table = table.merge(cached.index, on="subject_id", how="inner")
    table, class_weights = _bin_balance_split(table, settings, split_seed)
    return PreparedData(
        volumes=RowSubset(cached.volumes, table["row"].to_numpy()),
        table=table[[c for c in OUTPUT_COLUMNS if c in table.columns]].copy(),
        grid=cached.grid,
        bin_edges=list(settings.bin_edges),
        class_weights=class_weights,
        exclusions=exclusions,
    )


def read_table(settings: DataSettings, split_seed: int) -> tuple[pd.DataFrame, Path]:
    """The participants table, subsampled (seeded) to ``n_subjects`` when that is fewer, and
    the file it was read from."""
    source = io.participants_file(settings.participants)
    table = io.read_participants(source, require_id=settings.source.ids_in_table)
    if table.empty:
        raise DataError(f"{source} lists no subjects (a header but no rows)")
    table["_row"] = np.arange(len(table))  # each subject's row of the file, before subsampling
    table = settings.source.list_subjects(table, source)
    n_subjects = settings.n_subjects
    if n_subjects is not None and n_subjects < len(table):
        pick = np.random.default_rng(split_seed).choice(len(table), n_subjects, replace=False)
        table = table.iloc[np.sort(pick)]
    return table.reset_index(drop=True), source


def _set_aside_bad_ages(table: pd.DataFrame, settings: DataSettings,
                        source: Path) -> tuple[pd.DataFrame, list]:
    """Rows with a non-numeric or out-of-bins age: an error, or set aside as exclusions; rows
    whose age is unknown (empty or ``n/a``) are set aside whatever ``on_bad_subject`` says (a
    subject without an age is no error: it cannot be trained on, and ``make predict`` keeps it)."""
    edges = settings.bin_edges
    problems, set_aside = [], []
    bins = assign_bins(table["age"], edges)
    for i, row in table.iterrows():
        sid = row["subject_id"]
        if io.age_unknown(row["age_raw"]):
            set_aside.append({"subject_id": sid, "path": "", "reason": f"{sid}: missing age in "
                              f"{source}; left out of training (make predict predicts it)"})
            continue
        why = io.age_problem(row["age_raw"], row["age"])
        if why is None and bins[i] < 0:
            why = f"age {row['age']:g} outside the age bins [{edges[0]:g}, {edges[-1]:g})"
        if why is not None:
            problems.append({"subject_id": sid, "path": "", "reason": f"{sid}: {why} in {source}"})
    if problems and settings.on_bad_subject == "fail":
        raise DataError(problems[0]["reason"])
    bad_ids = {p["subject_id"] for p in set_aside + problems}
    return table[~table["subject_id"].isin(bad_ids)].reset_index(drop=True), set_aside + problems


def cache_volumes(table: pd.DataFrame, settings: DataSettings, progress: bool,
                  check_source: Callable | None = None):
    """Every subject's volume decoded, validated and cropped into the cache (or the cache reused).

    ``check_source(shape, affine)``, if given, sees the first good volume's grid before the
    cohort grid is made from it, and may refuse it (``make predict``: not the model's grid).

    Returns the table (with each subject's ``path`` when the format keeps a file per subject) and
    the cache entry.
    """
    located = locate_all(settings.source, table)
    entries, key_inputs = cache_entries(settings, located)
    paths = [loc.path for loc in located]
    if None not in paths:
        table["path"] = paths

    def make_grid(data, affine):
        if check_source is not None:
            check_source(tuple(data.shape), affine)
        found = settings.source.source_grid(located, data.shape, affine, settings.cache.workers)
        return cohort_grid(settings, found)

    cached = build_cache(
        entries, len(table), settings.cache.dir, key_inputs, make_grid=make_grid,
        dtype=settings.cache.dtype, on_bad=settings.on_bad_subject, progress=progress,
        workers=settings.cache.workers,
    )
    return table, cached


def _bin_balance_split(table: pd.DataFrame, settings: DataSettings, split_seed: int):
    """Age bins, the balanced subset and the stratified split; every bin must keep subjects.

    Bins are checked before balancing, so that a message names the bin at fault: downsampling
    gives every bin as many subjects as the smallest has.
    """
    edges = list(settings.bin_edges)
    table["bin"] = assign_bins(table["age"], edges)
    counts = [int((table["bin"] == k).sum()) for k in range(len(edges) - 1)]
    missing = [k for k, n in enumerate(counts) if n == 0]
    if missing:
        labels = bin_labels(edges)
        raise DataError(f"age bin(s) {missing} ({', '.join(labels[k] for k in missing)}) have no "
                        f"subjects after validation; check the ages or data.bin_edges={edges}")
    smallest = int(np.argmin(counts))
    n_val, n_test = split_sizes(counts[smallest], settings.split)
    if settings.balance == "downsample" and counts[smallest] - n_val - n_test < 1:
        raise DataError(bin_too_small(smallest, counts[smallest], settings.split, edges,
                                      " (the fewest; downsampling gives every bin that many)"))
    keep, class_weights = balance_bins(table["bin"].to_numpy(), settings.balance, split_seed)
    table = table.iloc[keep].reset_index(drop=True)
    table["split"] = stratified_split(table["bin"].to_numpy(), list(settings.split), split_seed,
                                      edges)
    return table, class_weights


def report_exclusions(exclusions: pd.DataFrame, run_dir) -> None:
    """Log the excluded subjects and write them to ``run_dir/exclusions.csv``."""
    if not len(exclusions):
        return
    log.warning("excluded %d subject(s); see exclusions.csv", len(exclusions))
    for reason in exclusions["reason"][:10]:
        log.warning("  %s", reason)
    if run_dir is not None:
        exclusions.to_csv(Path(run_dir) / "exclusions.csv", index=False)


def cohort_grid(settings: DataSettings, found: SourceGrid) -> Grid:
    """The cohort's grid from the volumes' grid ``found`` (its shape and affine, and how messages
    name the volumes; :meth:`~brainage.data.formats.DataFormat.source_grid`) and the crop settings.

    An affine of None (stacked arrays carry none): ``data.affine``, or the 1.5 mm MNI grid.
    """
    shape, affine, images = tuple(found.shape), found.affine, found.images
    source_shape = settings.source_shape or shape
    if tuple(source_shape) != tuple(shape):
        raise DataError(f"{images} shape {tuple(shape)}; data.source_shape expects "
                        f"{tuple(source_shape)} (set data.source_shape=null to take the images' grid)")
    crop_shape = settings.crop_shape or shape
    if any(c > s for c, s in zip(crop_shape, shape)):
        raise DataError(f"data.crop_shape={list(crop_shape)} is larger than the images: "
                        f"{images} shape {tuple(shape)}")
    if affine is None:
        affine = MNI_1P5MM_AFFINE if settings.affine is None else np.asarray(settings.affine,
                                                                              dtype=float)
    offset = settings.crop_offset
    if offset is not None and any(o + c > s for o, c, s in zip(offset, crop_shape, shape)):
        raise DataError(f"data.crop_offset={list(offset)} with crop_shape={list(crop_shape)} "
                        f"does not fit: {images} shape {tuple(shape)}")
    return Grid.build(affine, shape, crop_shape, offset)

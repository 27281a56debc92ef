"""Every subject of a cohort, validated and cached, with or without an age: what a trained model
is applied to (``make predict``).

The data stage's first steps (:mod:`brainage.data.cohort`: the participants table, each volume
decoded, validated, cropped and cached) without its last ones: no subject is set aside for its
age, nothing is binned, balanced or split. An unknown age (an empty or ``n/a`` cell) is NaN; so
is an unreadable one, which is named in the log. Bad images follow ``on_bad_subject`` as in
training.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from brainage.data import io
from brainage.data.cache import RowSubset
from brainage.data.cohort import cache_volumes, read_table
from brainage.data.settings import DataSettings
from brainage.data.synthetic import ensure_cohort
from brainage.neuro.grid import Grid

log = logging.getLogger(__name__)

COLUMNS = ("subject_id", "age", "sex", "site", "path")


@dataclass
class WholeCohort:
    """A cohort's cropped volumes and its table, in the participants table's order.

    Attributes
    ----------
    volumes : array-like (N, X, Y, Z)
        Row ``i`` belongs to ``table.iloc[i]`` (a lazy view of the cache).
    table : DataFrame
        ``subject_id``, ``age`` (NaN where unknown) and where known ``sex``, ``site``, ``path``.
    grid : Grid
    exclusions : DataFrame
        Subjects whose image was unusable (``on_bad_subject=exclude``): subject_id, path, reason;
        the caller reports them (:func:`~brainage.data.cohort.report_exclusions`).
    """

    volumes: RowSubset
    table: pd.DataFrame
    grid: Grid
    exclusions: pd.DataFrame


def whole_cohort(settings: DataSettings, seed: int = 0, progress: bool = True,
                 check_source: Callable | None = None) -> WholeCohort:
    """Read and cache every subject of the cohort ``settings`` describes.

    Parameters
    ----------
    settings : DataSettings
    seed : int
        Seeds the subsample when ``n_subjects`` asks for fewer than the table lists (as in
        training: ``split_seed``, else this).
    progress : bool
    check_source : callable(shape, affine), optional
        Sees the grid of the first good volume and may refuse it (the cache's
        :func:`~brainage.data.cohort.cache_volumes`).

    Raises
    ------
    DataError
        A bad table or image (as the data stage words it), or no usable volume.
    """
    split_seed = int(seed if settings.split_seed is None else settings.split_seed)
    if settings.synthetic is not None:
        ensure_cohort(settings.synthetic, progress=progress)
    table, source = read_table(settings, split_seed)
    ages = table["age"].to_numpy(dtype=float)
    unreadable = [f"{sid} ({raw!r})" for sid, raw, age in zip(table["subject_id"],
                                                              table["age_raw"], ages)
                  if not np.isfinite(age) and not io.age_unknown(raw)]
    if unreadable:
        log.warning("%d subject(s) of %s have an unreadable age, taken as unknown: %s",
                    len(unreadable), source, ", ".join(unreadable[:10]))
    table["age"] = np.where(np.isfinite(ages), ages, np.nan)
    table, cached = cache_volumes(table, settings, progress, check_source)
    table = table.merge(cached.index, on="subject_id", how="inner")
    return WholeCohort(
        volumes=RowSubset(cached.volumes, table["row"].to_numpy()),
        table=table[[c for c in COLUMNS if c in table.columns]].reset_index(drop=True),
        grid=cached.grid,
        exclusions=cached.exclusions,
    )

"""What the cache decodes: one loader per subject, and the inputs its key depends on.

A loader opens one subject's volume through the data format (:mod:`brainage.data.formats`) and
validates its values; the cache key covers what the format says the volumes depend on (every
input file's path, size and modification time) and every setting that changes the decoded
volumes, so a changed file or setting builds a new cache entry.
"""
from __future__ import annotations

import pandas as pd

from brainage.data import io
from brainage.data.cache import Entry
from brainage.data.formats import DataFormat, Located


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


def locate_all(source: DataFormat, table: pd.DataFrame) -> list[Located]:
    """Where each subject of ``table`` (``subject_id``, ``_row``) has its volume, in row order."""
    return [source.locate(sid, row) for sid, row in zip(table["subject_id"], table["_row"].tolist())]


def cache_entries(settings, located: list[Located]) -> tuple[list, list]:
    """Loaders of the subjects ``located`` by ``settings.source``, and the cache key's inputs.

    A subject that could not be found gets a loader that raises why, so the exclusion policy
    decides what happens to it.

    Returns
    -------
    entries : list of Entry
    key_inputs : list
    """
    source = settings.source
    value_range, tol = settings.value_range, settings.value_tolerance

    def loader(loc: Located):
        def load():
            data, affine = source.open_volume(loc)
            io.check_values(data, loc.source, loc.subject_id, value_range, tol)
            return data, affine
        return load

    entries = [Entry(loc.subject_id, loc.source, loader(loc)) for loc in located]
    return entries, [*source.cache_key(located), _common_inputs(settings)]

"""The interface every data format implements, and the registry from ``data.format`` to its class.

A format is a class that reads its own keys of the data config (:meth:`DataFormat.from_config`),
checks the participants table against its files (:meth:`~DataFormat.list_subjects`), says where
each subject's volume is (:meth:`~DataFormat.locate`), opens one volume with its affine
(:meth:`~DataFormat.open_volume`), and describes what a cache entry depends on
(:meth:`~DataFormat.cache_key`) and which grid the cohort is on (:meth:`~DataFormat.source_grid`).
It registers itself under its ``data.format`` name::

    @register_format("npy")
    @dataclass(frozen=True)
    class NpyStack(DataFormat): ...

This module imports no format, so any module may register here; ``brainage.data.formats``
imports every public module of the package (discovery).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from brainage.config_values import ConfigReader, one_of
from brainage.errors import DataError

_FORMATS: dict[str, type["DataFormat"]] = {}


@dataclass(frozen=True)
class Located:
    """Where one subject's volume is.

    Attributes
    ----------
    subject_id : str
    source : str
        How messages and ``exclusions.csv`` name it: its file, or ``<stack>[<row>]``.
    where : object
        What :meth:`DataFormat.open_volume` needs (a file, a row of a stack).
    path : str or None
        Its own file, for the prepared table's ``path`` column ("" when it was not found); None
        when the format keeps no file per subject (the table then has no ``path`` column).
    error : DataError or None
        Why it cannot be found; raised when the volume is opened, so that ``on_bad_subject``
        decides what happens to the subject.
    """

    subject_id: str
    source: str
    where: Any = None
    path: str | None = None
    error: DataError | None = None


@dataclass(frozen=True)
class SourceGrid:
    """The grid the cohort's volumes are on, before the crop.

    ``affine`` None: the volumes carry none (``data.affine``, or the 1.5 mm MNI grid). ``images``
    names them in messages, with its verb: ``"the first image has"``.
    """

    shape: tuple
    affine: np.ndarray | None
    images: str


class DataFormat:
    """One way the cohort's grey-matter volumes are stored; an instance holds its own settings.

    Subclasses are frozen dataclasses of their config keys, registered with
    :func:`register_format`.

    Class attributes
    ----------------
    name : str
        The ``data.format`` value (set by :func:`register_format`).
    ids_in_table : bool
        The participants table names every subject. False: ids may be left out and are implied by
        the row order (``row-0000``…), and a subject is found by its row.
    generates : bool
        ``data.generate`` writes the synthetic cohort in this format.
    """

    name: ClassVar[str] = ""
    ids_in_table: ClassVar[bool] = True
    generates: ClassVar[bool] = False

    @classmethod
    def from_config(cls, data: ConfigReader) -> "DataFormat":
        """This format's keys of the data config, validated (a ``DataError`` names the key)."""
        raise NotImplementedError

    def list_subjects(self, table: pd.DataFrame, table_path: Path) -> pd.DataFrame:
        """The subjects of the participants table as read (``subject_id``, ``age``…, ``_row``: each
        one's row in the file), checked against this format's files; the table is returned."""
        return table

    def locate(self, subject_id: str, row: int | None) -> Located:
        """Where ``subject_id``'s volume is; ``row``: its row of the participants table (None:
        not in it). A subject that cannot be found gets ``Located.error``, not an exception."""
        raise NotImplementedError

    def open_volume(self, located: Located) -> tuple[np.ndarray, np.ndarray | None]:
        """``(volume, affine)``: float32 X × Y × Z, and its voxel-to-world matrix or None.

        Raises the ``DataError`` of ``located.error``, or one naming the subject and the file.
        """
        raise NotImplementedError

    def cache_key(self, located: list[Located]) -> list:
        """What the decoded volumes depend on, JSON-able (files' fingerprints, rows); the format's
        name first. The data stage adds the settings common to every format."""
        raise NotImplementedError

    def source_grid(self, located: list[Located], shape: tuple, affine, workers: int | None
                    ) -> SourceGrid:
        """The cohort's grid, given the first good volume's ``shape`` and ``affine``."""
        raise NotImplementedError


def register_format(name: str):
    """A class decorator: the class reads data configs with ``data.format: <name>``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"format name must be a non-empty string, got {name!r}")

    def register(cls: type[DataFormat]) -> type[DataFormat]:
        if not (isinstance(cls, type) and issubclass(cls, DataFormat)):
            raise TypeError(f"format {name!r}: {cls!r} is not a DataFormat subclass")
        if name in _FORMATS and _FORMATS[name] is not cls:
            raise ValueError(f"format {name!r} is already registered ({_FORMATS[name].__module__})")
        cls.name = name
        _FORMATS[name] = cls
        return cls
    return register


def unregister_format(name: str) -> None:
    """Forget a registered format (tests, or a user's format replaced in a session)."""
    _FORMATS.pop(name, None)


def format_names() -> tuple[str, ...]:
    """The registered ``data.format`` values, in name order."""
    return tuple(sorted(_FORMATS))


def get_format(name: str) -> type[DataFormat]:
    """The class registered as ``name``; a ``DataError`` naming the known ones otherwise."""
    if name not in _FORMATS:
        raise DataError(f"data.format={name!r}; expected {_known()}")
    return _FORMATS[name]


def _known() -> str:
    """``'nifti' or 'npy'``: the registered names as the messages list them."""
    quoted = [f"'{n}'" for n in format_names()]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def format_class(data: ConfigReader, default: str | None = None) -> type[DataFormat]:
    """The class of the data config's ``data.format`` (missing or null: ``default``).

    Raises
    ------
    DataError
        ``data.format`` is none of the registered formats; the message lists them.
    """
    if default is not None and (not data.has("format") or data.raw("format", _known()) is None):
        return get_format(default)
    return get_format(data.value("format", one_of(*format_names()), _known()))


def read_format(data: ConfigReader, default: str | None = None) -> DataFormat:
    """The data config's format, built from its keys (``data.format`` missing or null: ``default``).

    Raises
    ------
    DataError
        ``data.format`` is none of the registered formats (the message lists them), or one of the
        format's keys is missing or wrong.
    """
    return format_class(data, default).from_config(data)

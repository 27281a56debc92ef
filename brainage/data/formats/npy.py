"""``data.format: npy``: the seed's format, one stacked N × X × Y × Z array (``data.npy_path``).

Row i of the participants table is volume i of the array; the table may leave out the ids
(``row-0000``, ``row-0001``…). The volumes carry no affine: ``data.affine``, or the 1.5 mm MNI
grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.config_values import ConfigReader, text
from brainage.data.cache import file_fingerprint
from brainage.data.formats.base import DataFormat, Located, SourceGrid, register_format
from brainage.errors import DataError


@register_format("npy")
@dataclass(frozen=True)
class NpyStack(DataFormat):
    """Every subject's volume a row of one ``.npy`` array, memory-mapped."""

    npy_path: str

    ids_in_table = False

    @classmethod
    def from_config(cls, data: ConfigReader) -> "NpyStack":
        return cls(npy_path=data.value("npy_path", text, "an N x X x Y x Z .npy file"))

    @cached_property
    def stack(self) -> np.ndarray:
        """The array, opened once (memory-mapped, read-only)."""
        return open_npy_stack(self.npy_path)

    def list_subjects(self, table: pd.DataFrame, table_path: Path) -> pd.DataFrame:
        check_stack_rows(self.npy_path, table_path, len(table), len(self.stack))
        return table

    def locate(self, subject_id: str, row: int | None) -> Located:
        if row is None:
            return Located(subject_id, str(self.npy_path), path=None,
                           error=DataError(f"{subject_id}: not in the ages table, so not in "
                                           f"{self.npy_path} (row i of the table is volume i)"))
        return Located(subject_id, f"{self.npy_path}[{row}]", where=int(row))

    def open_volume(self, located: Located):
        if located.error is not None:
            raise located.error
        return np.asarray(self.stack[located.where], dtype=np.float32), None

    def cache_key(self, located: list[Located]) -> list:
        return ["npy", file_fingerprint(self.npy_path), [loc.subject_id for loc in located],
                [loc.where for loc in located]]

    def source_grid(self, located: list[Located], shape: tuple, affine, workers: int | None
                    ) -> SourceGrid:
        return SourceGrid(tuple(shape), None, f"the volumes of {self.npy_path} have")


def open_npy_stack(path) -> np.ndarray:
    """Open the seed's stacked array (N × X × Y × Z) memory-mapped, read-only."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"stacked volume array not found: {path} (expected an N x X x Y x Z .npy)")
    try:
        arr = np.load(path, mmap_mode="r")
    except Exception as exc:
        raise DataError(f"cannot read {path} as a .npy array ({type(exc).__name__}: {exc})") from exc
    if arr.ndim == 5 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 4:
        raise DataError(f"{path} has shape {arr.shape}; expected N x X x Y x Z")
    return arr


def check_stack_rows(npy_path, table_path, n_rows: int, n_volumes: int) -> None:
    """The stacked array and its ages table must have the same number of rows (row i of the
    table is volume i of the array): either having more is an error naming both files.

    Raises
    ------
    DataError
    """
    if n_volumes != n_rows:
        more, fewer = ((f"{npy_path} holds {n_volumes} volumes", f"{table_path} {n_rows} rows")
                       if n_volumes > n_rows else
                       (f"{table_path} has {n_rows} rows", f"{npy_path} {n_volumes} volumes"))
        raise DataError(f"{more} but {fewer}; the ages table and the stacked array must match "
                        "row by row (row i of the table is volume i of the array)")

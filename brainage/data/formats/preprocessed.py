"""``data.format: preprocessed``: the grey matter ``make preprocess`` made from a raw T1 folder.

``data.root`` is the *raw* folder; the derivative is found from it
(:func:`brainage.data.derivative.derivative_dir` with ``data.derivatives_dir``), so a preset
names the raw data and nothing else. ``data.modulated`` picks the modulated (GM volume preserved)
or the unmodulated (GM concentration) map. The participants table is the raw one (``data.
participants``): a subject the preprocessing excluded has no map and is a bad subject, under
``data.on_bad_subject``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from brainage.config_values import ConfigReader, flag, text
from brainage.data.cache import file_fingerprint
from brainage.data.derivative import QC_TABLE, derivative_dir, subject_file
from brainage.data.formats.base import DataFormat, Located, SourceGrid, register_format
from brainage.data.formats.nifti import common_grid, load_image, read_image_data
from brainage.errors import DataError


@register_format("preprocessed")
@dataclass(frozen=True)
class Preprocessed(DataFormat):
    """One GM map per subject in the derivative made from the raw folder ``root``."""

    root: str
    derivatives_dir: str
    modulated: bool

    @classmethod
    def from_config(cls, data: ConfigReader) -> "Preprocessed":
        return cls(root=data.value("root", text, "the raw T1 folder that make preprocess read"),
                   derivatives_dir=data.value("derivatives_dir", text, "the folder make preprocess "
                                              "wrote to (its derivatives_dir)"),
                   modulated=data.value("modulated", flag, "true (modulated GM) or false"))

    @property
    def derivative(self) -> Path:
        return derivative_dir(self.root, self.derivatives_dir)

    def list_subjects(self, table, table_path):
        if not self.derivative.is_dir():
            raise DataError(f"no preprocessed grey matter of {self.root}: {self.derivative} does not "
                            f"exist; make it with `make preprocess data.root={self.root} "
                            f"derivatives_dir={self.derivatives_dir}`")
        return table

    def locate(self, subject_id, row):
        path = subject_file(self.derivative, subject_id, "modulated" if self.modulated else "unmodulated")
        if path.is_file():
            return Located(subject_id, str(path), where=path, path=str(path))
        error = DataError(f"{subject_id}: no preprocessed grey matter ({path} missing): the "
                          f"preprocessing excluded it (see {self.derivative / QC_TABLE}) or has not "
                          f"reached it (`make preprocess data.root={self.root}` goes on)")
        return Located(subject_id, str(path), path="", error=error)

    def open_volume(self, located):
        if located.error is not None:
            raise located.error
        img = load_image(located.where, located.subject_id)
        return read_image_data(img, located.where, located.subject_id), img.affine

    def cache_key(self, located):
        return ["preprocessed", [file_fingerprint(loc.where) if loc.error is None else [loc.source, None, None]
                                 for loc in located]]

    def source_grid(self, located, shape, affine, workers):
        common = common_grid([Path(loc.path) for loc in located if loc.path], workers)
        if common is None:
            return SourceGrid(tuple(shape), affine, "the first map has")
        shape, affine, n_sharing, n_read = common
        return SourceGrid(shape, affine, f"the maps ({n_sharing} of {n_read}) have")

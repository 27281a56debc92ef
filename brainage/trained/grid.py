"""The grid and data format a training run's model was trained on: ``grid.json`` in its directory.

Training writes it beside ``split.csv`` (:func:`write_trained_grid`); ``make predict`` reads it
(:func:`read_trained_grid`) to refuse a cohort the model was not trained for: another grid (shape
or affine), another voxel size, another data format or, for ``format: preprocessed`` data,
modulated against unmodulated grey matter or a derivative made with other step settings
(``preprocess_steps``). A run from before the file existed has none (None).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainage.data.derivative import derivative_dir, step_settings
from brainage.errors import TrainedRunError
from brainage.neuro.grid import Grid

GRID_FILE = "grid.json"


@dataclass(frozen=True)
class TrainedGrid:
    """What the volumes a model saw were: their grid and how they were made.

    Attributes
    ----------
    format : str
        ``data.format`` (``nifti``, ``npy``, ``preprocessed`` …).
    modulated : bool or None
        Modulated grey matter (``format: preprocessed``); None where the format does not say.
    grid : Grid
        Source shape and affine, and the crop the network saw.
    steps : dict or None
        ``format: preprocessed``: the step settings of the derivative ``make preprocess`` made
        (:func:`brainage.data.derivative.step_settings`); None for other formats, for a
        derivative that does not record them, and for runs from before the field existed.
    """

    format: str
    modulated: bool | None
    grid: Grid
    steps: dict | None = None

    @classmethod
    def of(cls, data, grid: Grid) -> "TrainedGrid":
        """From a data config (``format``, and ``modulated`` where it has one) and the cohort grid."""
        modulated = data.get("modulated")
        fmt = str(data.get("format") or "nifti")
        steps = None
        if fmt == "preprocessed" and data.get("root") and data.get("derivatives_dir"):
            steps = step_settings(derivative_dir(data.get("root"), data.get("derivatives_dir")))
        return cls(fmt, None if modulated is None else bool(modulated), grid, steps)

    @property
    def voxel_size(self) -> tuple:
        """Millimetres per voxel along each axis (the affine's column lengths)."""
        return voxel_size(self.grid.affine)

    @property
    def preprocessing(self) -> str:
        """How messages name the format: ``nifti``, ``preprocessed (modulated)`` …"""
        if self.modulated is None:
            return self.format
        return f"{self.format} ({'modulated' if self.modulated else 'unmodulated'})"

    def to_dict(self) -> dict:
        return {"format": self.format, "modulated": self.modulated,
                "voxel_size_mm": list(self.voxel_size), "grid": self.grid.to_dict(),
                "preprocess_steps": self.steps}


def voxel_size(affine) -> tuple:
    """Voxel sizes in mm, rounded to 1e-4 mm (the affine's column lengths)."""
    columns = np.asarray(affine, dtype=float)[:3, :3]
    return tuple(round(float(v), 4) for v in np.sqrt((columns ** 2).sum(axis=0)))


def changed_steps(found: dict | None, expected: dict | None) -> list:
    """The preprocessing step settings in which two derivatives differ; none where either does
    not record them (a run from before ``preprocess_steps``, or not ``format: preprocessed``)."""
    if found is None or expected is None:
        return []
    return sorted(k for k in found.keys() | expected.keys() if found.get(k) != expected.get(k))


def write_trained_grid(run_dir, data, grid: Grid) -> Path:
    """``<run_dir>/grid.json`` of the run's cohort (``data``: its data config)."""
    path = Path(run_dir) / GRID_FILE
    path.write_text(json.dumps(TrainedGrid.of(data, grid).to_dict(), indent=2))
    return path


def read_trained_grid(train_dir) -> TrainedGrid | None:
    """The run's ``grid.json``; None for a run made before it existed.

    Raises
    ------
    TrainedRunError
        The file is there but unreadable.
    """
    path = Path(train_dir) / GRID_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return TrainedGrid(str(record["format"]), record["modulated"],
                           Grid.from_dict(record["grid"]), record.get("preprocess_steps"))
    except (ValueError, KeyError, TypeError) as exc:
        raise TrainedRunError(f"{path} cannot be read ({type(exc).__name__}: {exc}); expected "
                              "the grid.json training writes") from exc

"""What the data stage hands to training and explanation."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from brainage.neuro.grid import Grid

SPLITS = ("train", "val", "test")


@dataclass
class PreparedData:
    """A validated, binned, balanced and split cohort with its cropped volumes.

    Attributes
    ----------
    volumes : array (N, X, Y, Z) float32
        Cropped grey-matter volumes (often a read-only ``np.memmap`` of the cache); row ``i`` belongs
        to ``table.iloc[i]``.
    table : DataFrame
        One row per volume: ``subject_id``, ``age``, ``bin``, ``split`` (train/val/test), and where
        known ``sex``, ``site``, ``path`` (the subject's source image).
    grid : Grid
        Source affine and shape plus the crop, so maps can be put back in world space.
    bin_edges : list of float
        Age-bin edges, bin ``k`` is ``[edges[k], edges[k+1])``.
    class_weights : dict or None
        ``{bin: weight}`` when balancing is ``class_weights``, else None.
    exclusions : DataFrame
        Subjects the data stage excluded (``subject_id``, ``path``, ``reason``); empty if none.
    """

    volumes: np.ndarray
    table: pd.DataFrame
    grid: Grid
    bin_edges: list
    class_weights: dict | None = None
    exclusions: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["subject_id", "path", "reason"])
    )

    @property
    def n_classes(self) -> int:
        return len(self.bin_edges) - 1

    @property
    def input_shape(self) -> tuple:
        return tuple(self.volumes.shape[1:]) + (1,)

    def indices(self, split: str) -> np.ndarray:
        """Row indices of one split, in table order."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return np.flatnonzero(self.table["split"].to_numpy() == split)

    def labels(self, split: str | None = None) -> np.ndarray:
        bins = self.table["bin"].to_numpy().astype(np.int64)
        return bins if split is None else bins[self.indices(split)]

    def split_table(self) -> pd.DataFrame:
        """The contract's ``split.csv``: subject_id, age, bin, split."""
        return self.table[["subject_id", "age", "bin", "split"]].copy()

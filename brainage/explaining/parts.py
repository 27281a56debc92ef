"""A part of an explain run: the rows and group sums of the batches one job explained.

Every row carries its global ``batch`` index, so parts combine by concatenating and sorting on
``batch`` (stably): that restores the row order of a single job, whatever the sharding. Group sums
are float64, so the shards' partial sums add up to the single job's sum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SUBJECT_COLUMNS = ["batch", "subject_id", "age", "bin", "predicted", "split"]
# A regression run's subjects also carry these (their "bin" and "predicted" are the gap group).
REGRESSION_SUBJECT_COLUMNS = ["predicted_age", "gap_corrected"]
CONSERVATION_COLUMNS = ["batch", "subject_id", "method", "target", "output", "relevance_sum",
                        "rel_error", "class", "negative_share"]
REGION_COLUMNS = ["batch", "subject_id", "bin", "method", "region", "n_voxels", "sum", "mean",
                  "density", "share"]
# An ensemble's region rows of each member's own map (the rows above are of the mean map).
MEMBER_REGION_COLUMNS = ["batch", "member", *REGION_COLUMNS[1:]]


@dataclass
class Part:
    """Results of explaining some batches (maps are on disk, in the job's ``maps/``)."""

    subjects: pd.DataFrame  # SUBJECT_COLUMNS
    conservation: pd.DataFrame  # CONSERVATION_COLUMNS
    regions: pd.DataFrame  # REGION_COLUMNS
    group_sum: dict  # (method, bin) -> float64 sum of normalised full-grid maps
    group_n: dict  # (method, bin) -> number of maps in the sum
    traces: list  # {"method", "trace", "batch"}
    seconds: float = 0.0
    member_regions: pd.DataFrame | None = None  # an ensemble's MEMBER_REGION_COLUMNS; else None


class PartBuilder:
    """Collects a :class:`Part` while batches are explained."""

    def __init__(self):
        self._subjects, self._conservation, self._regions, self._traces = [], [], [], []
        self._member_regions = []
        self._group_sum, self._group_n = {}, {}

    def add_subjects(self, rows: list[dict]) -> None:
        self._subjects += rows

    def add_conservation(self, rows: list[dict]) -> None:
        self._conservation += rows

    def add_regions(self, table: pd.DataFrame) -> None:
        self._regions.append(table[REGION_COLUMNS])

    def add_member_regions(self, table: pd.DataFrame) -> None:
        """An ensemble member's region rows of one subject's primary map."""
        self._member_regions.append(table[MEMBER_REGION_COLUMNS])

    def add_to_group(self, method: str, k: int, full: np.ndarray) -> None:
        """Add a map, normalised to sum 1, to the group of ``method`` and bin ``k``."""
        total = float(full.sum())
        if total == 0:
            return
        key = (method, int(k))
        self._group_sum[key] = self._group_sum.get(key, 0) + full.astype(np.float64) / total
        self._group_n[key] = self._group_n.get(key, 0) + 1

    def add_trace(self, method: str, trace: dict, batch: int) -> None:
        """A per-layer conservation trace: ``{layer: relevance sums}`` as plain lists."""
        rows = {str(k): np.asarray(v).tolist() for k, v in dict(trace).items()}
        self._traces.append({"method": method, "trace": rows, "batch": batch})

    def build(self, seconds: float = 0.0) -> Part:
        regions = (pd.concat(self._regions, ignore_index=True) if self._regions
                   else pd.DataFrame(columns=REGION_COLUMNS))
        extra = [c for c in REGRESSION_SUBJECT_COLUMNS if self._subjects and c in self._subjects[0]]
        return Part(subjects=pd.DataFrame(self._subjects, columns=SUBJECT_COLUMNS + extra),
                    conservation=pd.DataFrame(self._conservation, columns=CONSERVATION_COLUMNS),
                    regions=regions, group_sum=self._group_sum, group_n=self._group_n,
                    traces=self._traces, seconds=seconds,
                    member_regions=(pd.concat(self._member_regions, ignore_index=True)
                                    if self._member_regions else None))

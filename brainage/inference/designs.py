"""Group designs: which explained subjects are compared, and the tested variable of each.

A design is built from ``subjects.csv`` by a registered builder (``design.kind``):

* ``bins`` — two age bins, group b minus group a (default: the oldest vs the youngest bin);
* ``correct`` — correctly vs wrongly classified subjects;
* ``regressor`` — a numeric column as a continuous regressor (``age``; a regression run's gap);
* ``median_split`` — a numeric column split at its median, high vs low (e.g. brain-age gap).

Any numeric column of ``subjects.csv`` serves ``regressor`` and ``median_split``, so a column a
later explain run adds (such as ``gap``) needs no code here.

The explain run of an age regressor (its ``subjects.csv`` has ``predicted_age``) has gap groups in
place of age bins: ``bin`` 0 is the low-gap, 1 the high-gap group (split at the median corrected
gap), so ``bins`` compares them (``highgap_vs_lowgap``); ``correct`` has no classes to be right
about and is refused.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from brainage.errors import InferError

TWO_GROUP = "two_group"
CONTINUOUS = "continuous"
MIN_PER_GROUP = 2


@dataclass(frozen=True)
class DesignSpec:
    """Who is compared: ``kind``, the two bins of ``kind=bins`` (None: youngest vs oldest), a column."""

    kind: str
    groups: tuple | None
    column: str


@dataclass(frozen=True)
class Design:
    """A tested contrast over some of the subjects.

    Attributes
    ----------
    name : str
        Contrast name used in file names (``bin2_vs_bin0``, ``correct_vs_wrong``, ``age``).
    kind : str
        ``two_group`` (tested is 0 for group a, 1 for group b) or ``continuous``.
    rows : ndarray of int
        Rows of the subjects table that take part.
    tested : ndarray of float
        The tested variable per taking-part row.
    labels : tuple of str
        ``(group a, group b)``, or ``(column,)`` for a continuous regressor.
    description : str
        One line for the report: what a positive t means.
    """

    name: str
    kind: str
    rows: np.ndarray
    tested: np.ndarray
    labels: tuple
    description: str

    @property
    def group_sizes(self) -> tuple:
        """``(n_a, n_b)`` of a two-group design, else ``(n, 0)``."""
        if self.kind != TWO_GROUP:
            return len(self.rows), 0
        n_b = int(self.tested.sum())
        return len(self.rows) - n_b, n_b

    def summary(self) -> dict:
        """The design as ``infer.json`` and the report show it."""
        if self.kind == TWO_GROUP:
            n_a, n_b = self.group_sizes
            n = {self.labels[0]: n_a, self.labels[1]: n_b}
        else:
            n = {"subjects": len(self.rows)}
        return {"name": self.name, "kind": self.kind, "labels": list(self.labels), "n": n,
                "description": self.description}

    def shuffled(self, rng: np.random.Generator) -> "Design":
        """The same design with the tested variable permuted over its subjects (a null design)."""
        return replace(self, tested=rng.permutation(self.tested))


def _two_groups(name, labels, in_a, in_b, description) -> Design:
    in_a, in_b = np.asarray(in_a, bool), np.asarray(in_b, bool)
    for label, members in zip(labels, (in_a, in_b)):
        if members.sum() < MIN_PER_GROUP:
            raise InferError(f"design {name}: group {label} has {int(members.sum())} subject(s); "
                             f"a test needs at least {MIN_PER_GROUP} in each group")
    rows = np.flatnonzero(in_a | in_b)
    return Design(name, TWO_GROUP, rows, in_b[rows].astype(np.float64), tuple(labels),
                  description)


def _is_regression(subjects: pd.DataFrame) -> bool:
    """An age regressor's explained subjects (explain writes their predicted age in years)."""
    return "predicted_age" in subjects.columns


def _gap_groups(subjects: pd.DataFrame, spec: DesignSpec) -> Design:
    """An age regressor's high- vs low-gap group (``bin`` 1 vs 0)."""
    if spec.groups is not None and sorted(int(k) for k in spec.groups) != [0, 1]:
        raise InferError(f"design.groups={list(spec.groups)}: a regression run's explained subjects "
                         "have two gap groups, 0 (low gap) and 1 (high gap); use design.groups=null")
    bins = subjects["bin"].to_numpy()
    return _two_groups("highgap_vs_lowgap", ("lowgap", "highgap"), bins == 0, bins == 1,
                       "positive t: more relevance in the high- than in the low-gap group "
                       "(split at the median bias-corrected brain-age gap)")


def _bins(subjects: pd.DataFrame, spec: DesignSpec) -> Design:
    if _is_regression(subjects):
        return _gap_groups(subjects, spec)
    present = sorted(int(b) for b in subjects["bin"].unique())
    if spec.groups is None:
        if len(present) < 2:
            raise InferError(f"design.kind=bins: only bin {present} was explained; comparing bins "
                             "needs subjects of two bins (explain subjects=all, or another design)")
        a, b = present[0], present[-1]
    else:
        a, b = spec.groups
        for k in (a, b):
            if k not in present:
                raise InferError(f"design.groups=[{a}, {b}]: bin {k} has no explained subject "
                                 f"(bins present: {', '.join(map(str, present))})")
    bins = subjects["bin"].to_numpy()
    return _two_groups(f"bin{b}_vs_bin{a}", (f"bin{a}", f"bin{b}"), bins == a, bins == b,
                       f"positive t: more relevance in bin {b} than in bin {a}")


def _correct(subjects: pd.DataFrame, spec: DesignSpec) -> Design:
    if _is_regression(subjects):
        raise InferError("design.kind=correct: the explain run is of an age regressor, which has "
                         "no classes to be right or wrong about; use design.kind=median_split or "
                         "regressor with design.column=gap_corrected")
    correct = (subjects["predicted"] == subjects["bin"]).to_numpy()
    return _two_groups("correct_vs_wrong", ("wrong", "correct"), ~correct, correct,
                       "positive t: more relevance in correctly than in wrongly classified subjects")


def _numeric_column(subjects: pd.DataFrame, column: str) -> np.ndarray:
    if column not in subjects.columns:
        raise InferError(f"design.column={column}: no such column in subjects.csv (it has "
                         f"{', '.join(subjects.columns)})")
    values = pd.to_numeric(subjects[column], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).any():
        raise InferError(f"design.column={column}: the column holds no number")
    return values


def _regressor(subjects: pd.DataFrame, spec: DesignSpec) -> Design:
    values = _numeric_column(subjects, spec.column)
    rows = np.flatnonzero(np.isfinite(values))
    if len(rows) < 3 or np.ptp(values[rows]) == 0:
        raise InferError(f"design.column={spec.column}: a regressor needs at least 3 subjects "
                         "with different values")
    return Design(spec.column, CONTINUOUS, rows, values[rows], (spec.column,),
                  f"positive t: relevance rises with {spec.column}")


def _median_split(subjects: pd.DataFrame, spec: DesignSpec) -> Design:
    values = _numeric_column(subjects, spec.column)
    finite = np.isfinite(values)
    median = float(np.median(values[finite]))
    return _two_groups(f"high_vs_low_{spec.column}", (f"low {spec.column}", f"high {spec.column}"),
                       finite & (values <= median), finite & (values > median),
                       f"positive t: more relevance above the median {spec.column} "
                       f"({median:.4g}) than at or below it")


DESIGNS = {"bins": _bins, "correct": _correct, "regressor": _regressor,
           "median_split": _median_split}
"""``design.kind`` -> builder ``(subjects, spec) -> Design``."""


def build_design(subjects: pd.DataFrame, spec: DesignSpec) -> Design:
    """The design ``spec`` asks for over ``subjects`` (rows of ``subjects.csv``)."""
    return DESIGNS[spec.kind](subjects, spec)

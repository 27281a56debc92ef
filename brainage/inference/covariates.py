"""Nuisance columns of the tests: site and sex from the participants table, total GM volume.

Each requested covariate is used where the data have it; one that is missing or constant over the
tested subjects is left out with a note for the report. Categorical columns become indicator
columns (the first level is the reference); the intercept is added by the model, not here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CATEGORICAL = ("site", "sex")


@dataclass(frozen=True)
class Covariates:
    """A nuisance matrix (subjects × columns, no intercept) and what became of each request."""

    matrix: np.ndarray
    columns: list
    notes: list = field(default_factory=list)


def _indicators(name: str, values: pd.Series) -> tuple:
    levels = sorted(values.fillna("").astype(str).unique())
    if len(levels) < 2:
        return [], [], f"{name} left out: one value ({levels[0] or 'empty'}) over the tested subjects"
    cols = [(values.fillna("").astype(str) == level).to_numpy(np.float64) for level in levels[1:]]
    return cols, [f"{name}={level}" for level in levels[1:]], None


def build_covariates(names, subject_ids, participants: pd.DataFrame | None,
                     total_gm_ml: np.ndarray | None) -> Covariates:
    """The covariates ``names`` for ``subject_ids`` (in order).

    Parameters
    ----------
    names : sequence of str
        Any of ``site``, ``sex`` (participants table), ``total_gm`` (GM volume, mL).
    subject_ids : sequence of str
    participants : DataFrame or None
        The participants table (``subject_id`` and optional ``site``, ``sex``).
    total_gm_ml : ndarray or None
        GM volume of each subject, in the order of ``subject_ids``.
    """
    columns, labels, notes = [], [], []
    table = None
    if participants is not None:
        table = participants.set_index("subject_id").reindex(list(subject_ids))
    for name in names:
        if name in CATEGORICAL:
            if table is None or name not in table.columns:
                notes.append(f"{name} left out: the participants table has no {name} column")
                continue
            cols, col_labels, note = _indicators(name, table[name])
        else:  # total_gm
            values = np.asarray(total_gm_ml, dtype=np.float64)
            ok = np.ptp(values) > 0
            cols, col_labels = ([values], ["total_gm"]) if ok else ([], [])
            note = None if ok else "total_gm left out: the same for every tested subject"
        columns += cols
        labels += col_labels
        if note:
            notes.append(note)
    matrix = np.column_stack(columns) if columns else np.zeros((len(subject_ids), 0))
    return Covariates(matrix, labels, notes)

"""The raw cohort: its participants table and each subject's one T1 image.

BIDS raw (``sub-<id>/anat/sub-<id>_T1w.nii.gz`` beside ``participants.tsv``) is the default
layout; a folder of images and a table is the same with another ``data.t1_glob``
(``{root}/{subject_id}.nii.gz``) and ``data.participants``. The table decides who the subjects
are; a subject without exactly one matching image is a bad subject, named with its reason. The
table is kept as written (every column, as text), so the derivative's ``participants.tsv`` is the
raw one plus the pipeline's columns.
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from brainage.data.io import ID_ALIASES, participants_file
from brainage.errors import DataError


@dataclass(frozen=True)
class RawSubject:
    """One subject of the raw table: its T1 image, or why it has none."""

    subject_id: str
    t1: Path | None
    problem: str | None = None


@dataclass(frozen=True)
class RawCohort:
    """The raw participants table as written, the name of its id column, and its subjects."""

    table: pd.DataFrame
    id_column: str
    subjects: list


def read_raw_table(path) -> tuple[pd.DataFrame, str]:
    """The participants table at ``path`` (every column as text) and its id column.

    Raises
    ------
    DataError
        No such table, no id column, or an id empty or given twice; the message names the file.
    """
    path = participants_file(path)
    try:
        sep = "\t" if path.suffix.lower() == ".tsv" else None  # None: pandas sniffs , ; or tab
        table = pd.read_csv(path, sep=sep, engine="python", dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for malformed text
        raise DataError(f"cannot read participants table {path}: {exc}") from exc
    table.columns = [c.strip() for c in table.columns]
    id_column = next((c for c in ID_ALIASES if c in table.columns), None)
    if id_column is None:
        raise DataError(f"{path}: no subject id column; expected one of {', '.join(ID_ALIASES[:3])} "
                        f"(found columns: {', '.join(table.columns)})")
    ids = table[id_column].str.strip()
    if (ids == "").any():
        raise DataError(f"{path}: empty subject id on line {int((ids == '').to_numpy().argmax()) + 2}")
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise DataError(f"{path}: duplicate subject ids: {', '.join(duplicated[:5])} (each subject "
                        "must appear once)")
    table[id_column] = ids
    return table, id_column


def find_t1(t1_glob: str, root, subject_id: str) -> RawSubject:
    """The one image of ``subject_id`` matching ``t1_glob``, or the subject with why not."""
    pattern = t1_glob.format(root=str(root), subject_id=subject_id)
    hits = sorted(glob.glob(pattern))
    if len(hits) == 1:
        return RawSubject(subject_id, Path(hits[0]))
    if not hits:
        return RawSubject(subject_id, None, f"{subject_id}: no T1 image matches {pattern}")
    shown = ", ".join(Path(h).name for h in hits[:3])
    return RawSubject(subject_id, None, f"{subject_id}: {len(hits)} T1 images match {pattern} "
                      f"({shown}); expected one: narrow data.t1_glob")


def read_raw_cohort(root, participants, t1_glob: str) -> RawCohort:
    """The raw table and every subject of it with its T1 image (or its problem), in table order."""
    table, id_column = read_raw_table(participants)
    if table.empty:
        raise DataError(f"{participants_file(participants)} lists no subjects (a header but no rows)")
    subjects = [find_t1(t1_glob, root, sid) for sid in table[id_column]]
    return RawCohort(table, id_column, subjects)


def check_outside(derivative: Path, root) -> None:
    """Refuse a derivative inside the raw root: the raw folder is never written."""
    derivative, root = Path(derivative).resolve(), Path(root).resolve()
    if derivative == root or root in derivative.parents:
        raise DataError(f"derivatives_dir puts the derivative at {derivative}, inside data.root="
                        f"{root}; the raw folder is never written: pick a derivatives_dir outside it")

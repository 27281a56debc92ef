"""Readers for participants tables, and the checks of ages and voxel values every format shares.

The volumes themselves are read by the data formats (:mod:`brainage.data.formats`).

Every failure becomes a :class:`DataError` naming the subject, the file and what was expected.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.errors import DataError

ID_ALIASES = ("subject_id", "participant_id", "subject_ID", "Subject_ID", "subjectid", "id")
# An age cell that says the age is unknown: empty, or BIDS' "n/a" (and its common spellings).
UNKNOWN_AGE = ("", "n/a", "na", "nan")
SEPARATORS = ",\t;"


def read_participants(path, require_id: bool = True) -> pd.DataFrame:
    """Read a participants table (CSV or TSV) into ``subject_id``, ``age`` (+ ``sex``, ``site``).

    The separator is taken from the extension (``.tsv`` → tab) or sniffed among comma, tab and
    semicolon (a table of one column has none). ``participant_id`` and ``subject_ID`` are accepted
    for ``subject_id``. Ages are parsed as numbers; a missing or non-numeric age is kept as NaN
    (an unknown age — empty or ``n/a`` — is left out of training; any other is reported by the
    data stage). Without an id column and ``require_id=False`` (the seed's stacked format),
    subjects are named ``row-0000``, ``row-0001``…
    """
    path = participants_file(path)
    try:
        sep = "\t" if path.suffix.lower() == ".tsv" else _sniff_separator(path)
        table = pd.read_csv(path, sep=sep, engine="python", dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for malformed text
        raise DataError(f"cannot read participants table {path}: {exc}") from exc
    table.columns = [c.strip() for c in table.columns]
    found = ", ".join(table.columns)  # as the user wrote them, before an implied id is added
    id_col = next((c for c in ID_ALIASES if c in table.columns), None)
    if id_col is None and not require_id:
        table["subject_id"] = [f"row-{i:04d}" for i in range(len(table))]
        id_col = "subject_id"
    if id_col is None:
        raise DataError(
            f"{path}: no subject id column; expected one of {', '.join(ID_ALIASES[:3])} "
            f"(found columns: {found})"
        )
    if "age" not in table.columns:
        raise DataError(f"{path}: no 'age' column (found columns: {found})")
    out = pd.DataFrame({"subject_id": table[id_col].str.strip()})
    out["age_raw"] = table["age"].str.strip()
    out["age"] = pd.to_numeric(out["age_raw"], errors="coerce").astype(float)
    for col in ("sex", "site"):
        if col in table.columns:
            out[col] = table[col].str.strip()
    dup = out["subject_id"][out["subject_id"].duplicated(keep=False)].unique()
    if len(dup):
        shown = ", ".join(map(str, dup[:5]))
        raise DataError(f"{path}: duplicate subject ids: {shown} (each subject must appear once)")
    empty = out["subject_id"] == ""
    if empty.any():
        rows = ", ".join(str(i + 2) for i in np.flatnonzero(empty)[:5])
        raise DataError(f"{path}: empty subject id on line(s) {rows}")
    return out


def _sniff_separator(path: Path) -> str:
    """The table's separator among comma, tab and semicolon; comma when the sample shows none.

    Left to itself, csv's sniffer may take a letter of a one-column header (``age``) for one.
    """
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        sample = handle.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(sample, delimiters=SEPARATORS).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {sep: header.count(sep) for sep in SEPARATORS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def participants_file(path) -> Path:
    """The participants table named by ``path``.

    A path without a ``.csv``/``.tsv`` suffix (``<root>/participants``) that is not a file itself
    means the ``.tsv`` or the ``.csv`` beside it: exactly one of them must exist.

    Raises
    ------
    DataError
        No such file, or both a ``.tsv`` and a ``.csv``; the message names the files looked for.
    """
    path = Path(path)
    if path.is_file():
        return path
    if path.suffix.lower() in (".csv", ".tsv"):
        other = path.with_suffix(".csv" if path.suffix.lower() == ".tsv" else ".tsv")
        hint = f" ({other} exists: set data.participants={other})" if other.is_file() else ""
        raise DataError(f"participants table not found: {path}{hint}")
    candidates = [Path(f"{path}.tsv"), Path(f"{path}.csv")]
    found = [c for c in candidates if c.is_file()]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(f"both {found[0]} and {found[1]} exist; keep one participants table or "
                        "name it with data.participants=<file>")
    raise DataError(f"participants table not found: neither {candidates[0]} nor {candidates[1]} "
                    "exists (expected a TSV or CSV file with subject_id and age)")


def age_unknown(age_raw: str) -> bool:
    """Whether an age cell says the age is not known (empty or ``n/a``): such a subject is left
    out of training and kept by ``make predict``; any other unreadable age is an error."""
    return age_raw.strip().lower() in UNKNOWN_AGE


def age_problem(age_raw: str, age: float) -> str | None:
    """Why an age cannot be used, or None."""
    if age_unknown(age_raw):
        return "missing age"
    if not np.isfinite(age):
        return f"non-numeric age {age_raw!r}"
    return None


def check_values(data: np.ndarray, path, subject_id: str, value_range, tolerance: float) -> None:
    """NaN/inf voxels or values far outside the expected range are errors."""
    finite = np.isfinite(data)
    if not finite.all():
        raise DataError(
            f"{subject_id}: {path} has {int((~finite).sum())} NaN/inf voxels; "
            "expected finite grey-matter probabilities"
        )
    lo, hi = float(value_range[0]), float(value_range[1])
    vmin, vmax = float(data.min()), float(data.max())
    if vmin < lo - tolerance or vmax > hi + tolerance:
        raise DataError(
            f"{subject_id}: {path} has values in [{vmin:.4g}, {vmax:.4g}]; expected grey-matter "
            f"probabilities in [{lo:g}, {hi:g}] (tolerance {tolerance:g}) — is this a GM map?"
        )

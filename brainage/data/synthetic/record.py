"""A cohort's on-disk record (``cohort.json``): what decides that a folder holds the cohort asked for.

Generation writes ``cohort.json`` last, so a folder with files but no record is an interrupted (or
foreign) cohort. A folder whose record differs from the request is refused with the differences
named; the same request reuses it.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from brainage.errors import DataError

GENERATOR_VERSION = "1"
"""Bump when the same settings would write different files: older cohorts are then refused."""


def cohort_record(n_subjects: int, settings, affine, shape, ages) -> dict:
    """The part of cohort.json that decides whether an existing cohort is the one asked for.

    Parameters
    ----------
    n_subjects : int
    settings : SyntheticSettings
    affine : (4, 4) array
    shape : tuple of int
    ages : sequence of float or None
        Explicit ages, if any.

    Returns
    -------
    dict
        JSON-plain (as read back from the file).
    """
    record = {
        "generator": "brainage.data.synthetic",
        "version": GENERATOR_VERSION,
        "n_subjects": int(n_subjects),
        "seed": int(settings.seed),
        "parameters": _parameters(settings),
        "grid": {"affine": np.asarray(affine, dtype=float).round(6).tolist(), "shape": list(shape)},
        "ages": None if ages is None else [float(a) for a in ages],
    }
    return json.loads(json.dumps(record))


def _parameters(settings) -> dict:
    """The settings as a dict; ``planted`` only when there is a plant (earlier cohorts lack it)."""
    parameters = asdict(settings)
    if parameters.get("planted", False) is None:
        del parameters["planted"]
    return parameters


def _shown(value):
    """A value short enough for a message; long lists and dicts as ``...``."""
    return value if not isinstance(value, (list, dict)) or len(str(value)) < 60 else "..."


def describe_difference(old: dict, new: dict) -> str:
    """``key: <old> there, <new> asked`` for every key that differs (parameters one by one)."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        if key in ("parameters",) and isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
            for k in sorted(set(old[key]) | set(new[key])):
                if old[key].get(k) != new[key].get(k):
                    diffs.append(f"{k}: {old[key].get(k)!r} there, {new[key].get(k)!r} asked")
        elif old.get(key) != new.get(key):
            diffs.append(f"{key}: {_shown(old.get(key))!r} there, {_shown(new.get(key))!r} asked")
    return "; ".join(diffs)


def read_cohort_record(root) -> dict | None:
    """``root/cohort.json`` as a dict, None when there is none; error when a generation was interrupted.

    Parameters
    ----------
    root : str or Path

    Returns
    -------
    dict or None
    """
    root = Path(root)
    record_path = root / "cohort.json"
    if record_path.is_file():
        try:
            return json.loads(record_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{record_path} is unreadable ({exc}); delete {root} and generate again") from exc
    if root.exists() and any(root.iterdir()):
        leftovers = sorted(p.name for p in root.iterdir())[:5]
        raise DataError(
            f"{root} holds files ({', '.join(leftovers)}) but no cohort.json: an interrupted or foreign "
            f"synthetic cohort. Delete {root} or pick another data.root"
        )
    return None


def holds_cohort(root: Path, record: dict) -> bool:
    """True when ``root`` holds exactly this cohort; False when it holds none; error otherwise."""
    old = read_cohort_record(root)
    if old is None:
        return False
    old_core = {k: old.get(k) for k in record}
    if old_core != record:
        raise DataError(
            f"{root} already holds a different synthetic cohort ({describe_difference(old_core, record)}). "
            "Pick another data.root (e.g. data.root=data/synthetic_<name>) or delete the folder"
        )
    return True

"""Sensitivity against the synthetic cohort's ground truth (``<data.root>/ground_truth/regions.csv``).

The generator lists every Neuromorphometrics region with a ``role``: ``ageing`` (loses GM with age)
or ``control`` (unchanged: primary visual cortex). Sensitivity of a method is the share of the
ageing regions whose test is FWE-significant. A control region found is relevance that differs
where the anatomy does not — a fault of the explanation, not of the error control (which the
shuffled-label null check measures).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

AGEING, CONTROL = "ageing", "control"


def ground_truth_regions(cfg) -> pd.DataFrame | None:
    """``name``, ``role`` of the training cohort's ground truth, or None for a real cohort."""
    root = cfg.data.get("root") if cfg is not None else None
    path = Path(str(root)) / "ground_truth" / "regions.csv" if root else None
    if path is None or not path.is_file():
        return None
    table = pd.read_csv(path)
    return table[["name", "role"]] if {"name", "role"} <= set(table.columns) else None


def sensitivity(inference: pd.DataFrame, truth: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per method of an atlas's inference table: ageing regions found, and control regions found.

    Only regions whose names match the ground truth count (the Neuromorphometrics atlas).
    Returns ``method``, ``test`` (raw / gm_adjusted), ``n_ageing``, ``found``, ``sensitivity``,
    ``n_control``, ``control_found``.
    """
    roles = dict(zip(truth["name"], truth["role"]))
    rows = []
    for method, table in inference.groupby("method", sort=False):
        role = table["region"].map(roles)
        for test, column in (("raw", "p_fwe"), ("gm_adjusted", "p_fwe_adj")):
            if column not in table:
                continue
            found = table[column] <= alpha
            ageing, control = role == AGEING, role == CONTROL
            rows.append({"method": method, "test": test, "n_ageing": int(ageing.sum()),
                         "found": int((found & ageing).sum()),
                         "sensitivity": (float((found & ageing).sum() / ageing.sum())
                                         if ageing.any() else float("nan")),
                         "n_control": int(control.sum()),
                         "control_found": ", ".join(table.loc[found & control, "region"])})
    return pd.DataFrame(rows, columns=["method", "test", "n_ageing", "found", "sensitivity",
                                       "n_control", "control_found"])

"""Summary statistics shared by the faithfulness tables: mean ± standard error, per group."""
from __future__ import annotations

import numpy as np
import pandas as pd


def mean_se(values) -> tuple[float, float, int]:
    """Mean, standard error (sd / √n, ddof 1; NaN for n < 2) and n of the finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), 0
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), se, int(v.size)


def mean_se_table(table: pd.DataFrame, keys: list, metrics: list) -> pd.DataFrame:
    """Per group of ``keys`` (in order of appearance): ``n`` (rows) and each metric's mean and SE.

    Columns: ``keys``, ``n``, then ``<metric>``, ``<metric>_se`` for every metric (means and SEs
    of the finite values, :func:`mean_se`).
    """
    rows = []
    for key, group in table.groupby(keys, sort=False):
        row = dict(zip(keys, key))
        row["n"] = len(group)
        for metric in metrics:
            row[metric], row[f"{metric}_se"], _ = mean_se(group[metric])
        rows.append(row)
    columns = [*keys, "n", *(c for m in metrics for c in (m, f"{m}_se"))]
    return pd.DataFrame(rows, columns=columns)

"""Several independently trained models: their scorecards as mean ± SD per (method, target mode).

Issue #19 measures its goals "on at least three independently trained quick models (different
seeds): mean ± SD". :func:`summarise_scorecards` takes one checked scorecard per model and writes,
per pair, every number's mean over the models (under its scorecard name, so the checks and the
default-choice rule apply to the summary unchanged), its SD over the models (``<column>_sd``), the
number of models that reported it (``<column>_models``), and how many models passed each check
(``pass_<check>_models``). ``aopc_se`` of the summary is the SE of the mean over models
(SD / √n), so "within one SE of the best" compares models, not subjects.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

PAIR = ["method", "target"]
# Per-model bookkeeping that is not averaged.
_SKIP = ("goals_met", "goals_measured")


def summarise_scorecards(cards: dict) -> pd.DataFrame:
    """Mean ± SD over models of every numeric scorecard column, per pair.

    Parameters
    ----------
    cards : dict
        ``{model label: checked scorecard}`` (:func:`~brainage.faithfulness.checks.apply_checks`).

    Returns
    -------
    DataFrame
        ``method, target, explainer, n_models``, then per numeric column ``<c>``, ``<c>_sd``,
        ``<c>_models``, then ``pass_<check>_models``; pairs in order of first appearance.
    """
    if not cards:
        raise ValueError("no scorecards to summarise")
    stacked = pd.concat([card.assign(model=label) for label, card in cards.items()],
                        ignore_index=True)
    numeric = [c for c in stacked.columns
               if c not in (*PAIR, "model", *_SKIP) and not c.startswith("pass_")
               and pd.api.types.is_numeric_dtype(stacked[c])]
    checks = [c for c in stacked.columns if c.startswith("pass_")]
    rows = []
    for (method, target), group in stacked.groupby(PAIR, sort=False):
        row = {"method": method, "target": target, "explainer": group["explainer"].iloc[0],
               "n_models": group["model"].nunique()}
        for column in numeric:
            values = group[column].to_numpy(dtype=np.float64)
            finite = values[np.isfinite(values)]
            row[column] = finite.mean() if finite.size else np.nan
            row[f"{column}_sd"] = finite.std(ddof=1) if finite.size > 1 else np.nan
            row[f"{column}_models"] = int(finite.size)
        if "aopc" in numeric and row["aopc_models"] > 1:
            row["aopc_se"] = row["aopc_sd"] / np.sqrt(row["aopc_models"])
        for column in checks:
            row[f"{column}_models"] = int(group[column].eq(True).sum())  # NaN (not measured) counts as not met
        rows.append(row)
    return pd.DataFrame(rows)

"""An ensemble's regional relevance across its members: the members' region rows, each region's
mean ± SD and rank stability, and the test–retest reliability (ICC) of the regions' relevance.

Each member's own map of a subject's primary target is summed per atlas region as one run's map
is (:meth:`~brainage.explaining.atlas_index.AtlasIndex.stats`): ``regions/<atlas>_members.csv``.
A member rates a region by its **mean share** of relevance over the explained subjects (outside-atlas
relevance is no region); :func:`brainage.ensemble.reliability.reliability_summary` turns the
members' ratings into ``regions/<atlas>_ensemble.csv`` (per method and region: mean, SD across
members, in how many members' top k it is) and, per method, ICC(3,1) over every region and over
the ensemble's top k with their 95 % intervals, and the top regions that are not reliable.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainage.ensemble.reliability import KINDS, reliability_summary
from brainage.neuro.regions import OUTSIDE

ICC_KIND = "3,1"  # consistency: blind to one member giving every region more relevance
ICC_NAME = (f"ICC({ICC_KIND}): {KINDS[ICC_KIND]} (Shrout & Fleiss 1979; McGraw & Wong's ICC(C,1)),"
            " members as raters, atlas regions as targets")
RATING = "each member's mean share of relevance per region over the explained subjects"


def member_region_rows(atlas, grid, members: np.ndarray, keys: dict) -> pd.DataFrame:
    """Region rows of each member's map of one subject (``members``: (members, *crop)), the
    ``keys`` (batch, subject_id, bin, method) in front and a ``member`` index (0, 1, …)."""
    tables = []
    for m, volume in enumerate(members):
        stats = atlas.stats(grid.uncrop(np.asarray(volume, dtype=np.float32)))
        for column, value in reversed(list({**keys, "member": m}.items())):
            stats.insert(0, column, value)
        tables.append(stats)
    return pd.concat(tables, ignore_index=True)


def member_ratings(rows: pd.DataFrame) -> dict:
    """``{"member<m>": mean share per region}`` of one method's member region rows."""
    inside = rows[rows["region"] != OUTSIDE]
    means = inside.groupby(["member", "region"], sort=False)["share"].mean()
    return {f"member{m}": means.loc[m] for m in sorted(inside["member"].unique())}


def write_region_reliability(member_regions: pd.DataFrame, atlas_name: str, top_k: int,
                             min_icc: float, work: Path) -> dict:
    """``regions/<atlas>_members.csv`` and ``regions/<atlas>_ensemble.csv``; returns the
    reliability of each method's regional relevance for ``explain.json``."""
    rows = member_regions.sort_values("batch", kind="stable").drop(columns="batch")
    rows = rows.reset_index(drop=True)
    (work / "regions").mkdir(exist_ok=True)
    rows.to_csv(work / "regions" / f"{atlas_name}_members.csv", index=False)
    tables, methods = [], {}
    for method, of_method in rows.groupby("method", sort=False):
        result = reliability_summary(member_ratings(of_method), top_k, ICC_KIND, min_icc)
        tables.append(result["table"].assign(method=method))
        methods[method] = reliability_entry(result)
    table = pd.concat(tables, ignore_index=True)
    table[["method", *[c for c in table.columns if c != "method"]]].to_csv(
        work / "regions" / f"{atlas_name}_ensemble.csv", index=False)
    return {"icc": ICC_NAME, "rating": RATING, "top_k": top_k, "min_icc": min_icc,
            "methods": methods}


def reliability_entry(result: dict) -> dict:
    """One method's reliability, plain JSON: the ICCs, whether the top k's reaches ``min_icc``,
    the top regions and the unreliable ones."""
    top = result["table"].head(result["top_k"])
    return {"all_regions": _icc(result["icc_all_detail"]),
            "top_k": _icc(result["icc_top_k_detail"]),
            "meets_min_icc": bool(result["meets_icc"]),
            "top_k_regions": [str(r) for r in top["region"]],
            "unreliable_regions": [{"region": str(u["region"]), "reason": u["reason"]}
                                   for u in result["unreliable"]]}


def _icc(detail: dict | None) -> dict:
    """An :func:`~brainage.ensemble.reliability.icc` result; ``icc`` None where it is undefined
    (fewer than two regions, or no variance)."""
    if detail is None:
        return {"icc": None, "ci95": None, "f": None, "p": None, "n_regions": None}
    return {"icc": detail["icc"], "ci95": list(detail["ci95"]), "f": detail["f"],
            "p": detail["p"], "n_regions": int(detail["n_targets"])}

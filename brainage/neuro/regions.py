"""Relevance per atlas region: tidy tables per subject and per age bin."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

OUTSIDE = "(outside atlas)"
_HEMI = re.compile(r"^(left|right|lh|rh)[_ \-.]+|[_ \-.]+(l|r|left|right|lh|rh)$", re.IGNORECASE)


def hemisphere_free(name: str) -> str:
    """``Left_Hippocampus`` → ``Hippocampus``; ``Precentral_L`` → ``Precentral``."""
    return _HEMI.sub("", str(name)).strip() or str(name)


def region_lookup(labels: np.ndarray, table: pd.DataFrame, merge_hemispheres: bool = False):
    """Dense region id per voxel (0 = outside every labelled region) and the region names.

    Labels present in the map but missing from the table, and table entries not in the map, are
    handled: the former count as outside, the latter get zero voxels.
    """
    names = table["name"].astype(str).tolist()
    if merge_hemispheres:
        names = [hemisphere_free(n) for n in names]
    unique = list(dict.fromkeys(names))
    region_of_name = {n: i + 1 for i, n in enumerate(unique)}
    lut = np.zeros(int(max(labels.max(initial=0), table["index"].max()) + 1), dtype=np.int64)
    lut[table["index"].to_numpy(dtype=np.int64)] = [region_of_name[n] for n in names]
    ids = lut[np.clip(labels.astype(np.int64), 0, None)]
    return ids, [OUTSIDE] + unique


def region_stats(volume: np.ndarray, ids: np.ndarray, names: list, voxel_ml: float) -> pd.DataFrame:
    """Sum, mean, density (sum per mL) and share of the map's total relevance per region.

    The shares of all rows, the outside-atlas row included, add to 1.
    """
    flat = np.asarray(volume, dtype=np.float64).ravel()
    ids = ids.ravel()
    n = len(names)
    sums = np.bincount(ids, weights=flat, minlength=n)
    counts = np.bincount(ids, minlength=n)
    total = flat.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        density = np.where(counts > 0, sums / (np.maximum(counts, 1) * voxel_ml), 0.0)
        share = sums / total if total != 0 else np.zeros(n)
    return pd.DataFrame({"region": names, "n_voxels": counts, "sum": sums, "mean": mean,
                         "density": density, "share": share})


def summarise_regions(subjects: pd.DataFrame) -> pd.DataFrame:
    """Per bin × method × region: mean and SD across subjects of share and sum, and the rank.

    Rank 1 is the region with the largest mean share in that bin and method (outside-atlas
    relevance is reported but not ranked).
    """
    keys = ["bin", "method", "region"]
    out = (subjects.groupby(keys, sort=False)
           .agg(n_subjects=("subject_id", "nunique"), mean_share=("share", "mean"),
                sd_share=("share", "std"), mean_sum=("sum", "mean"), sd_sum=("sum", "std"),
                mean_density=("density", "mean"))
           .reset_index())
    ranked = out["region"] != OUTSIDE
    out["rank"] = np.nan
    out.loc[ranked, "rank"] = (out[ranked].groupby(["bin", "method"])["mean_share"]
                               .rank(ascending=False, method="min"))
    out["rank"] = out["rank"].astype("Int64")
    return out.sort_values(["method", "bin", "rank"], na_position="last").reset_index(drop=True)

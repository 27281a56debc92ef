"""How sure is a map? The reliability of regional relevance across the members of an ensemble.

The members (independently trained models: seeds or cross-validation folds) act as raters and the
regions as targets. :func:`icc` gives the intraclass correlation of Shrout & Fleiss (1979) in the
notation of McGraw & Wong (1996): ICC(3,1) — two-way mixed, consistency, single rater, McGraw & Wong's
ICC(C,1) — or ICC(2,1) — two-way random, absolute agreement, single rater, their ICC(A,1) — with the
F test against ICC = 0 and the F-based 95 % confidence interval. :func:`region_reliability` tabulates
each region's relevance as mean ± SD across members and its rank stability (in how many members it is
in the top k); :func:`reliability_summary` puts both together and flags the top regions that are not
reliable.

Pure numpy, pandas and scipy: no other brainage package is imported.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

KINDS = {"3,1": "two-way mixed, consistency, single rater",
         "2,1": "two-way random, absolute agreement, single rater"}
_ALPHA = 0.05


def _ratings_matrix(ratings) -> np.ndarray:
    """The ratings as a float targets × raters array, rows with any non-finite value dropped."""
    matrix = np.asarray(ratings.to_numpy(dtype=float) if isinstance(ratings, pd.DataFrame) else ratings,
                        dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"ratings must be 2-D (targets × raters), got {matrix.ndim}-D")
    matrix = matrix[np.isfinite(matrix).all(axis=1)]
    n, k = matrix.shape
    if k < 2:
        raise ValueError(f"the ICC needs at least 2 raters (columns), got {k}")
    if n < 2:
        raise ValueError(f"the ICC needs at least 2 targets (rows) with finite ratings from every rater, got {n}")
    return matrix


def _mean_squares(matrix: np.ndarray) -> tuple[float, float, float]:
    """Two-way ANOVA without replication: mean squares of rows (targets), columns (raters) and error."""
    n, k = matrix.shape
    grand = matrix.mean()
    ss_rows = k * np.sum((matrix.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((matrix.mean(axis=0) - grand) ** 2)
    ss_error = max(np.sum((matrix - grand) ** 2) - ss_rows - ss_cols, 0.0)
    return ss_rows / (n - 1), ss_cols / (k - 1), ss_error / ((n - 1) * (k - 1))


def _ci_consistency(f: float, df1: int, df2: int, k: int) -> tuple[float, float]:
    """Exact F-based 95 % interval of ICC(3,1) = ICC(C,1) (McGraw & Wong 1996, Table 7, case 3)."""
    if np.isinf(f):
        return 1.0, 1.0
    f_low = f / stats.f.ppf(1 - _ALPHA / 2, df1, df2)
    f_high = f * stats.f.ppf(1 - _ALPHA / 2, df2, df1)
    return (f_low - 1) / (f_low + k - 1), (f_high - 1) / (f_high + k - 1)


def _ci_agreement(value: float, msr: float, msc: float, mse: float, n: int, k: int) -> tuple[float, float]:
    """Approximate 95 % interval of ICC(2,1) = ICC(A,1) with Satterthwaite's degrees of freedom
    (McGraw & Wong 1996, Table 7, case 2A; the same as pingouin and R's psych::ICC)."""
    if value >= 1.0:
        return 1.0, 1.0
    a = k * value / (n * (1 - value))
    b = 1 + k * value * (n - 1) / (n * (1 - value))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    f_low = stats.f.ppf(1 - _ALPHA / 2, n - 1, v)
    f_high = stats.f.ppf(1 - _ALPHA / 2, v, n - 1)
    spread = k * msc + (k * n - k - n) * mse
    low = n * (msr - f_low * mse) / (f_low * spread + n * msr)
    high = n * (f_high * msr - mse) / (spread + n * f_high * msr)
    return float(low), float(high)


def _value_and_ci(kind: str, f: float, mean_squares: tuple[float, float, float], n: int,
                  k: int) -> tuple[float, tuple[float, float]]:
    """The ICC of ``kind`` from the mean squares (MSR, MSC, MSE), and its 95 % interval."""
    msr, msc, mse = mean_squares
    if kind == "3,1":
        return (msr - mse) / (msr + (k - 1) * mse), _ci_consistency(f, n - 1, (n - 1) * (k - 1), k)
    value = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    return value, _ci_agreement(value, msr, msc, mse, n, k)


def icc(ratings, kind: str = "3,1") -> dict:
    """Intraclass correlation of a targets × raters table, single rater.

    Parameters
    ----------
    ratings : array-like or pandas.DataFrame
        Rows are targets (regions), columns raters (ensemble members); rows with any non-finite
        value are dropped.
    kind : {"3,1", "2,1"}
        ``"3,1"``: two-way mixed, consistency (McGraw & Wong's ICC(C,1)), blind to a constant offset
        of a rater; ``"2,1"``: two-way random, absolute agreement (ICC(A,1)), which an offset lowers.

    Returns
    -------
    dict
        ``kind``, ``icc``, ``ci95`` (low, high), the F test against ICC = 0 (``f`` = MSR / MSE with
        ``df1`` = n - 1, ``df2`` = (n - 1)(k - 1), one-sided ``p``), ``n_targets`` and ``n_raters``.

    Raises
    ------
    ValueError
        For an unknown kind, ratings that are not 2-D, fewer than 2 raters or 2 complete targets,
        or ratings that do not vary at all.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ICC kind {kind!r}: use one of {sorted(KINDS)}")
    matrix = _ratings_matrix(ratings)
    n, k = matrix.shape
    msr, msc, mse = _mean_squares(matrix)
    if mse <= 1e-14 * max(msr, msc):
        mse = 0.0
    if msr == 0 and mse == 0:
        raise ValueError("the ratings do not vary between targets or within them: the ICC is undefined")
    df1, df2 = n - 1, (n - 1) * (k - 1)
    f = msr / mse if mse > 0 else np.inf
    value, ci = _value_and_ci(kind, f, (msr, msc, mse), n, k)
    p = float(stats.f.sf(f, df1, df2)) if np.isfinite(f) else 0.0
    return {"kind": kind, "icc": float(value), "ci95": (float(ci[0]), float(ci[1])), "f": float(f),
            "df1": df1, "df2": df2, "p": p, "n_targets": n, "n_raters": k}


def _members_frame(tables: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Regions × members, the union of the regions (NaN where a member lacks one)."""
    if not tables:
        raise ValueError("no ensemble members: tables is empty")
    return pd.DataFrame({label: pd.Series(series, dtype=float) for label, series in tables.items()})


def region_reliability(tables: Mapping[str, pd.Series], top_k: int = 10) -> pd.DataFrame:
    """Each region's relevance across the members: mean ± SD and rank stability.

    Parameters
    ----------
    tables : mapping of str to pandas.Series
        ``{member label: relevance of each region}``, indexed by region name (e.g. mean relevance).
    top_k : int
        The size of the top list whose membership is counted.

    Returns
    -------
    pandas.DataFrame
        One row per region (the union over members), sorted by ``mean`` descending: ``region``,
        ``mean``, ``sd`` (ddof = 1 across members, NaN with one value), ``n_members`` (finite values),
        ``top_k_count`` (members that rank the region in their top ``top_k`` by descending relevance;
        tied regions share the better rank), ``top_k_share`` (count / all members) and ``rank_mean``
        (mean rank, 1 = most relevant).
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    frame = _members_frame(tables)
    ranks = frame.rank(ascending=False, method="min")
    top_count = (ranks <= top_k).sum(axis=1)
    table = pd.DataFrame({"region": frame.index, "mean": frame.mean(axis=1).to_numpy(),
                          "sd": frame.std(axis=1, ddof=1).to_numpy(),
                          "n_members": frame.notna().sum(axis=1).to_numpy(),
                          "top_k_count": top_count.to_numpy(),
                          "top_k_share": (top_count / frame.shape[1]).to_numpy(),
                          "rank_mean": ranks.mean(axis=1).to_numpy()})
    return table.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)


def _icc_or_nan(ratings: pd.DataFrame, kind: str) -> dict | None:
    """:func:`icc`, or None where it is undefined (too few complete regions or members, no variance)."""
    try:
        return icc(ratings, kind)
    except ValueError:
        return None


def _unreliable(top: pd.DataFrame, top_k: int, n_members: int, min_top_k_share: float) -> list[dict]:
    """The top regions in too few members' top k, or whose SD across members exceeds |mean|."""
    flagged = []
    for row in top.itertuples(index=False):
        reasons = []
        if row.top_k_share < min_top_k_share:
            reasons.append(f"in the top {top_k} of {row.top_k_count} of {n_members} members")
        cv = row.sd / abs(row.mean) if row.mean != 0 else np.inf
        if np.isfinite(row.sd) and cv > 1:
            reasons.append(f"SD across members ({row.sd:.3g}) exceeds |mean| ({abs(row.mean):.3g})")
        if reasons:
            flagged.append({"region": row.region, "reason": "; ".join(reasons)})
    return flagged


def reliability_summary(tables: Mapping[str, pd.Series], top_k: int = 10, kind: str = "3,1",
                        min_icc: float = 0.8, min_top_k_share: float = 0.5) -> dict:
    """The reliability of an ensemble's regional relevance: ICCs, the region table, the unreliable regions.

    Parameters
    ----------
    tables : mapping of str to pandas.Series
        ``{member label: relevance of each region}`` as for :func:`region_reliability`.
    top_k, kind : int, str
        The top list's size and the ICC kind (``"3,1"`` or ``"2,1"``, see :func:`icc`).
    min_icc, min_top_k_share : float
        The ICC over the top regions that counts as reliable, and the least share of members whose
        top ``top_k`` a top region must be in.

    Returns
    -------
    dict
        ``kind``, ``top_k``, ``n_members``; ``icc_all`` and ``icc_top_k`` (NaN where undefined) with
        their full :func:`icc` results (or None) under ``icc_all_detail`` and ``icc_top_k_detail``;
        ``meets_icc`` (``icc_top_k >= min_icc``, False when NaN); ``unreliable``, a list of
        ``{"region", "reason"}`` among the ensemble mean's top ``top_k``; ``table``, the
        :func:`region_reliability` table.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ICC kind {kind!r}: use one of {sorted(KINDS)}")
    frame = _members_frame(tables)
    table = region_reliability(tables, top_k)
    top = table.head(top_k)
    detail_all = _icc_or_nan(frame, kind)
    detail_top = _icc_or_nan(frame.loc[top["region"]], kind) if len(top) >= 2 else None
    icc_all = detail_all["icc"] if detail_all else float("nan")
    icc_top = detail_top["icc"] if detail_top else float("nan")
    return {"kind": kind, "top_k": top_k, "n_members": frame.shape[1],
            "icc_all": icc_all, "icc_all_detail": detail_all,
            "icc_top_k": icc_top, "icc_top_k_detail": detail_top, "meets_icc": bool(icc_top >= min_icc),
            "unreliable": _unreliable(top, top_k, frame.shape[1], min_top_k_share), "table": table}

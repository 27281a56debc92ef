"""Region-wise tests: effect size with a 95 % interval, t, p, p(FDR) and p(FWE), raw and GM-adjusted.

For every region the relevance measure is regressed on the tested variable with the covariates
(site, sex, …) — the *raw* test — and again with the region's own GM density added as a covariate
— the *GM-adjusted* test. The adjusted test puts GM density into the model (rather than
residualising relevance alone): residualising only the relevance would also strip the part of the
group effect that GM shares with the group (older brains have less GM), and would not count the
degree of freedom it costs; with GM in the model the t of the group term is the effect of the
group *at equal GM density* (Frisch–Waugh–Lovell), and the permutations respect it (Freedman–Lane).

* ``p``: two-sided, from the t distribution with the model's residual df;
* ``p_fdr``: Benjamini–Hochberg over the atlas's tested regions
  (:func:`scipy.stats.false_discovery_control`);
* ``p_fwe``: max-|t| permutation over the atlas's regions, ``(1 + #{max|t*| ≥ |t|}) / (n_perm + 1)``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from brainage.inference.designs import TWO_GROUP
from brainage.inference.effect_size import HEDGES_G, PARTIAL_R, hedges_g, partial_r
from brainage.inference.linear_model import fit_residual_model, max_abs_t_null

ADJUSTED = "_adj"
"""Suffix of the GM-adjusted columns."""


def fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p over the finite entries (NaN stays NaN)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = stats.false_discovery_control(p[finite], method="bh")
    return out


def fwe_p(t: np.ndarray, null_max: np.ndarray) -> np.ndarray:
    """Family-wise p of each |t| against the permutation distribution of the maximum |t|."""
    null = np.sort(np.asarray(null_max))
    exceed = len(null) - np.searchsorted(null, np.abs(t), side="left")
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(t), (1.0 + exceed) / (len(null) + 1.0), np.nan)


def region_statistics(values, design, covariates: np.ndarray, own=None, n_perm: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """One test per column of ``values`` (subjects × regions, rows = the design's subjects).

    Returns
    -------
    DataFrame
        One row per region: ``estimate`` (b − a or slope), ``effect`` (Hedges' g or partial r)
        with ``effect_lo``/``effect_hi`` (95 %), ``t``, ``df``, ``p``, ``p_fdr``, ``p_fwe``.
    """
    model = fit_residual_model(values, design.tested, covariates, own)
    t = model.t()
    null = max_abs_t_null(model, n_perm, np.random.default_rng(seed))
    if design.kind == TWO_GROUP:
        effect = hedges_g(t, *design.group_sizes, model.df)
    else:
        effect = partial_r(t, model.df)
    p = 2.0 * stats.t.sf(np.abs(t), model.df)
    return pd.DataFrame({"estimate": model.estimate, "effect": effect[0], "effect_lo": effect[1],
                         "effect_hi": effect[2], "t": t, "df": model.df, "p": p, "p_fdr": fdr(p),
                         "p_fwe": fwe_p(t, null)})


def region_inference(values, names, n_voxels, design, covariates: np.ndarray, gm=None,
                     n_perm: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Raw and (when ``gm`` is given) GM-adjusted tests of every region, side by side.

    Parameters
    ----------
    values : (n, R) array
        Relevance measure per tested subject and region.
    names, n_voxels : sequences of length R
    design : Design
    covariates : (n, k) array
    gm : (n, R) array or None
        GM density per subject and region.

    Returns
    -------
    DataFrame
        ``region``, ``n_voxels``, ``effect_kind``, group means (two-group designs), the raw
        statistics and the same with the suffix ``_adj``, and ``gm_r`` (correlation of relevance
        with GM density over the subjects), sorted by ``p_fwe``, ``p`` and ``|t|``.
    """
    values = np.asarray(values, dtype=np.float64)
    table = pd.DataFrame({"region": list(names), "n_voxels": np.asarray(n_voxels, dtype=np.int64),
                          "effect_kind": HEDGES_G if design.kind == TWO_GROUP else PARTIAL_R})
    if design.kind == TWO_GROUP:
        in_b = design.tested > 0.5
        table["mean_a"], table["mean_b"] = values[~in_b].mean(axis=0), values[in_b].mean(axis=0)
    table = pd.concat([table, region_statistics(values, design, covariates, None, n_perm, seed)], axis=1)
    if gm is not None:
        adjusted = region_statistics(values, design, covariates, gm, n_perm, seed)
        table = pd.concat([table, adjusted.add_suffix(ADJUSTED)], axis=1)
        table["gm_r"] = [_correlation(values[:, r], gm[:, r]) for r in range(values.shape[1])]
    order = np.lexsort((-np.abs(table["t"].fillna(0)), table["p"].fillna(2), table["p_fwe"].fillna(2)))
    return table.iloc[order].reset_index(drop=True)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])

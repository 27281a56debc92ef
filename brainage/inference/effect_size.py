"""Standardised effect sizes with analytic 95 % intervals, from a model's t statistic.

Two groups: Hedges' g. From the t of the group term, d = t·√(1/n_a + 1/n_b) and g = J·d with the
small-sample correction J = 1 − 3 / (4·df − 1) (df = the model's residual degrees of freedom).
Without covariates this is exactly the textbook g = J·(m_b − m_a)/s_pooled (df = n_a + n_b − 2);
with covariates it is the covariate-adjusted g (the group difference in units of the residual SD).
The interval is the large-sample normal one of Hedges & Olkin (1985):
SE(g) = √((n_a + n_b)/(n_a·n_b) + g² / (2·(n_a + n_b))), g ± 1.96·SE.

A continuous regressor: the partial correlation r = t / √(t² + df), with the Fisher-z interval
tanh(atanh(r) ± 1.96 / √(df − 1)) (df − 1 = n − k − 3 for k covariates).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))

HEDGES_G = "hedges_g"
PARTIAL_R = "partial_r"


def hedges_g(t, n_a: int, n_b: int, df):
    """Hedges' g and its 95 % interval from the group term's t.

    Returns
    -------
    g, lower, upper : ndarray
    """
    t, df = np.asarray(t, dtype=np.float64), np.asarray(df, dtype=np.float64)
    d = t * np.sqrt(1.0 / n_a + 1.0 / n_b)
    g = (1.0 - 3.0 / (4.0 * df - 1.0)) * d
    n = n_a + n_b
    se = np.sqrt(n / (n_a * n_b) + g ** 2 / (2.0 * n))
    return g, g - Z95 * se, g + Z95 * se


def partial_r(t, df):
    """Partial correlation of the tested regressor and its 95 % Fisher-z interval.

    Returns
    -------
    r, lower, upper : ndarray
    """
    t, df = np.asarray(t, dtype=np.float64), np.asarray(df, dtype=np.float64)
    r = t / np.sqrt(t ** 2 + df)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
        half = Z95 / np.sqrt(np.maximum(df - 1.0, 1e-12))
    return r, np.tanh(z - half), np.tanh(z + half)

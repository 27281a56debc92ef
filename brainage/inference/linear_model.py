"""Many ordinary least-squares tests of one variable, with Freedman–Lane permutations.

Each column ``r`` of ``y`` (a region's relevance) gets its own model

    y_r = β_r·x + [1, C, g_r]·γ_r + ε,

where ``x`` is the tested variable (group or regressor), ``C`` the shared covariates and ``g_r`` an
optional covariate of that column alone (the region's GM density). By the Frisch–Waugh–Lovell
theorem the t of β_r equals the t of the regression of the nuisance residuals of ``y_r`` on the
nuisance residuals of ``x``. Permutations follow Freedman & Lane (1983), the scheme of nilearn's
``permuted_ols``: the reduced (nuisance-only) model's residuals are permuted — the same rows for
every column, so the maximum over columns gives a family-wise null — and refitted with the full model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainage.errors import InferError

_TOL = 1e-10


def orthonormal_basis(columns: np.ndarray) -> np.ndarray:
    """Orthonormal basis (n × rank) of the span of ``columns``; collinear columns count once."""
    u, s, _ = np.linalg.svd(np.asarray(columns, dtype=np.float64), full_matrices=False)
    return u[:, s > _TOL * max(s.max(initial=0.0), 1.0)]


def _remove(values: np.ndarray, basis: np.ndarray) -> np.ndarray:
    return values - basis @ (basis.T @ values)


@dataclass(frozen=True)
class ResidualModel:
    """The models of all columns, prepared once for the observed data and every permutation.

    Attributes
    ----------
    basis : (n, q)
        Orthonormal basis of the shared nuisance ``[1, C]``.
    own : (n, R)
        Unit-length part of each column's own covariate orthogonal to ``basis`` (zeros if none).
    tested : (n, R)
        The tested variable with each column's whole nuisance removed.
    residuals : (n, R)
        Residuals of ``y`` under the reduced (nuisance-only) model.
    estimate : (R,)
        β per column: the group difference (b − a) or the slope, adjusted for the nuisance.
    df : (R,)
        Residual degrees of freedom of each full model.
    """

    basis: np.ndarray
    own: np.ndarray
    tested: np.ndarray
    residuals: np.ndarray
    estimate: np.ndarray
    df: np.ndarray

    def t(self, orders: np.ndarray | None = None) -> np.ndarray:
        """t of β per column: observed (``orders`` None, shape (R,)) or under each row order
        of ``orders`` (shape (m, n)), shape (m, R)."""
        e = self.residuals[None] if orders is None else self.residuals[orders]
        a = np.einsum("nq,mnr->mqr", self.basis, e)
        b = np.einsum("nr,mnr->mr", self.own, e)
        c = np.einsum("nr,mnr->mr", self.tested, e)
        xx = np.einsum("nr,nr->r", self.tested, self.tested)
        with np.errstate(divide="ignore", invalid="ignore"):
            rss = np.einsum("mnr,mnr->mr", e, e) - (a ** 2).sum(axis=1) - b ** 2 - c ** 2 / xx
            t = c * np.sqrt(self.df) / (np.sqrt(xx) * np.sqrt(np.maximum(rss, 0.0)))
        t[:, ~np.isfinite(self.estimate)] = np.nan
        return t[0] if orders is None else t


def fit_residual_model(y, tested, covariates, own=None) -> ResidualModel:
    """Prepare the models of every column of ``y`` (see the module docstring).

    Parameters
    ----------
    y : (n, R) array
        One column per test (region).
    tested : (n,) array
    covariates : (n, k) array
        Shared nuisance columns, without the intercept (added here).
    own : (n, R) array or None
        A covariate per column (GM density of that region), or None.
    """
    y = np.asarray(y, dtype=np.float64)
    n, n_cols = y.shape
    basis = orthonormal_basis(np.column_stack([np.ones(n), np.asarray(covariates, np.float64)]))
    x0 = _remove(np.asarray(tested, dtype=np.float64), basis)
    if np.linalg.norm(x0) < _TOL * max(np.linalg.norm(tested), 1.0):
        raise InferError("the tested variable is fully explained by the covariates (e.g. every "
                         "subject of one group comes from one site); drop a covariate")
    own_unit = np.zeros((n, n_cols))
    if own is not None:
        g = _remove(np.asarray(own, dtype=np.float64), basis)
        norm = np.linalg.norm(g, axis=0)
        ok = norm > _TOL * np.maximum(np.linalg.norm(own, axis=0), 1.0)
        own_unit[:, ok] = g[:, ok] / norm[ok]
    x = x0[:, None] - own_unit * (own_unit.T @ x0)[None]
    residuals = _remove(y, basis)
    residuals -= own_unit * np.einsum("nr,nr->r", own_unit, residuals)[None]
    xx = np.einsum("nr,nr->r", x, x)
    df = n - basis.shape[1] - (np.abs(own_unit).sum(axis=0) > 0) - 1
    usable = (xx > _TOL * (x0 @ x0)) & (df > 0) & (np.linalg.norm(residuals, axis=0) > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(usable, np.einsum("nr,nr->r", x, y) / xx, np.nan)
    return ResidualModel(basis, own_unit, x, residuals, estimate, df.astype(np.float64))


def max_abs_t_null(model: ResidualModel, n_perm: int, rng: np.random.Generator,
                   chunk_bytes: float = 64e6) -> np.ndarray:
    """Maximum |t| over the usable columns under each of ``n_perm`` random row permutations."""
    n, n_cols = model.residuals.shape
    per_chunk = max(1, int(chunk_bytes // (8 * n * n_cols)))
    out = np.empty(n_perm)
    for start in range(0, n_perm, per_chunk):
        m = min(per_chunk, n_perm - start)
        orders = np.stack([rng.permutation(n) for _ in range(m)])
        out[start:start + m] = np.nanmax(np.abs(model.t(orders)), axis=1, initial=0.0)
    return out

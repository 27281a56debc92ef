"""Voxel-wise tests with family-wise error control: nilearn's ``permuted_ols``.

Every voxel of the mask is one OLS model ``relevance ~ tested + covariates + intercept``; the
two-sided max-|t| permutation distribution (Freedman–Lane, as nilearn implements it) gives
voxel-level FWE p-values, and optionally TFCE (Smith & Nichols 2009) values with their own max-type
FWE p-values. No voxel-wise GM adjustment: ``permuted_ols`` takes one confound matrix shared by
all voxels, not a covariate per voxel (the region tests do adjust for GM density).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VoxelResult:
    """Voxel-wise statistics over the mask's voxels.

    Attributes
    ----------
    t, logp_fwe : (V,) arrays
        t of the tested variable and −log10 of its FWE-corrected p.
    t_threshold : float
        |t| above which a voxel is FWE-significant at ``alpha`` (inf if ``n_perm`` is too small).
    df : int
        Residual degrees of freedom of the voxel models.
    tfce, logp_fwe_tfce : (V,) arrays or None
        TFCE values and −log10 FWE p of TFCE, when asked for.
    """

    t: np.ndarray
    logp_fwe: np.ndarray
    t_threshold: float
    df: int
    tfce: np.ndarray | None = None
    logp_fwe_tfce: np.ndarray | None = None

    def n_significant(self, alpha: float) -> int:
        return int((self.logp_fwe >= -np.log10(alpha) - 1e-12).sum())


def fwe_threshold(null_max: np.ndarray, alpha: float) -> float:
    """The |t| that a significant voxel must exceed: its FWE p ``(1 + #{null ≥ |t|}) / (n + 1)``
    is then ≤ ``alpha``; inf when ``n`` permutations cannot reach ``alpha``."""
    null = np.sort(np.asarray(null_max))
    # How many null maxima may reach a |t| that is still significant.
    allowed = int(np.floor(alpha * (len(null) + 1) - 1 + 1e-9))
    if allowed < 0:
        return float("inf")
    return float(null[len(null) - 1 - allowed]) if allowed < len(null) else 0.0


def _as_dict(out) -> dict:
    """nilearn < 0.13 returns ``(logp, t, h0)`` by default; later versions a dict."""
    if isinstance(out, dict):
        return out
    logp, t, h0 = out
    return {"logp_max_t": logp, "t": t, "h0_max_t": h0}


def voxel_inference(voxels: np.ndarray, design, covariates: np.ndarray, mask_img=None,
                    n_perm: int = 1000, seed: int = 0, tfce: bool = False, n_jobs: int = 1,
                    alpha: float = 0.05) -> VoxelResult:
    """Permutation test of ``design.tested`` at every voxel (rows of ``voxels`` = its subjects).

    ``mask_img`` (the mask as a NIfTI image) is needed for TFCE only.
    """
    from nilearn.mass_univariate import permuted_ols

    masker = None
    if tfce:
        from nilearn.maskers import NiftiMasker

        masker = NiftiMasker(mask_img=mask_img).fit()
    covariates = np.asarray(covariates, dtype=np.float64)
    with warnings.catch_warnings():
        # nilearn warns when n_perm < n_jobs and about the deprecated output_type; neither matters.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        out = _as_dict(permuted_ols(
            np.asarray(design.tested, dtype=np.float64)[:, None], np.asarray(voxels, np.float64),
            confounding_vars=covariates if covariates.shape[1] else None, model_intercept=True,
            n_perm=n_perm, two_sided_test=True, random_state=seed, n_jobs=n_jobs, verbose=0,
            masker=masker, tfce=tfce))
    rank = np.linalg.matrix_rank(np.column_stack([np.ones(len(covariates)), covariates]))
    return VoxelResult(
        t=np.asarray(out["t"])[0], logp_fwe=np.asarray(out["logp_max_t"])[0],
        t_threshold=fwe_threshold(np.asarray(out["h0_max_t"])[0], alpha),
        df=int(len(covariates) - rank - 1),
        tfce=np.asarray(out["tfce"])[0] if tfce else None,
        logp_fwe_tfce=np.asarray(out["logp_max_tfce"])[0] if tfce else None)

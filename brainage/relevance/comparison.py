"""How much BatchNormalization handling changes the maps: passthrough vs MergeBatchNorm."""

from __future__ import annotations

import numpy as np

from brainage.relevance.canonizers import MergeBatchNorm
from brainage.relevance.layerwise import RelevanceAnalyzer


def compare_bn_modes(model, x, target="predicted", labels=None, composite="dtd", **params) -> dict:
    """Explain ``x`` without canonizer (passthrough) and with :class:`MergeBatchNorm` (canonize).

    Parameters
    ----------
    model, x, target, labels
        As for :meth:`~brainage.relevance.Analyzer.explain`.
    composite : Composite or str
    **params
        Passed to both :class:`RelevanceAnalyzer` (preset parameters, ``compile``, ...).

    Returns
    -------
    dict
        ``correlation`` (Pearson, per input), ``rel_l1`` (``Σ|R_pass − R_canon| / Σ|R_canon|``
        per input), their means ``mean_correlation``/``mean_rel_l1``, and the conservation
        errors ``rel_error_passthrough``/``rel_error_canonize``.
    """
    passthrough = RelevanceAnalyzer(model, composite, canonizers=[], **params)
    canonize = RelevanceAnalyzer(model, composite, canonizers=[MergeBatchNorm()], **params)
    ep = passthrough.explain(x, target=target, labels=labels)
    ec = canonize.explain(x, target=target, labels=labels)
    corr, rel_l1 = _map_agreement(ep.maps, ec.maps)
    return {
        "correlation": corr,
        "rel_l1": rel_l1,
        "mean_correlation": float(np.nanmean(corr)),
        "mean_rel_l1": float(np.nanmean(rel_l1)),
        "rel_error_passthrough": ep.rel_error,
        "rel_error_canonize": ec.rel_error,
    }


def _map_agreement(maps: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per input (first axis): Pearson correlation and ``Σ|maps − reference| / Σ|reference|``."""
    a = maps.reshape(maps.shape[0], -1).astype(np.float64)
    b = reference.reshape(reference.shape[0], -1).astype(np.float64)
    ac, bc = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (ac * bc).sum(1) / np.sqrt((ac**2).sum(1) * (bc**2).sum(1))
        rel_l1 = np.abs(a - b).sum(1) / np.abs(b).sum(1)
    return corr, rel_l1

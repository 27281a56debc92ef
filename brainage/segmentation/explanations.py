"""Explain the summed logits of the predicted mask (seed 003) with every configured method.

The explained value of subject ``n`` is ``Σ_{v ∈ M_n} z_v``: the structure's logit summed over the
voxels the U-Net labels as structure (``M_n``: logit above the threshold). The engine starts each
method from that region (``Analyzer.explain(x, target=0, output_mask=M)``); layer-wise methods
carry a conservation trace, so their maps should sum to the explained value: DTD (z⁺ and zᴮ) does,
up to units that die in the backward pass; ε and biases absorb a share (the "books" add it back).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainage.errors import SegmentationError


@dataclass(frozen=True)
class RegionExplanation:
    """One method's maps of the explained subjects and their conservation.

    Attributes
    ----------
    tag, method : str
        The config's tag and the engine's method name.
    maps : float32 array (n, *box)
    outputs : float64 array (n,)
        The explained value, ``Σ_{v∈M} z_v``.
    relevance_sum : float64 array (n,)
    rel_error : float64 array (n,) or None
        ``|Σ R − Σ_{v∈M} z_v| / |Σ_{v∈M} z_v|`` for layer-wise methods (None for gradient methods,
        whose maps are not meant to sum to the output).
    books_rel_error : float64 array (n,) or None
        The same with the relevance that ε and biases absorbed added back (layer-wise methods).
    """

    tag: str
    method: str
    maps: np.ndarray
    outputs: np.ndarray
    relevance_sum: np.ndarray
    rel_error: np.ndarray | None
    books_rel_error: np.ndarray | None

    def conservation(self) -> dict:
        """Median and largest relative conservation errors (None for gradient methods, which have
        none); ``layer_wise``: whether the method propagates relevance (and so has them)."""
        if self.rel_error is None:
            return {"layer_wise": False, "rel_error_max": None, "rel_error_median": None,
                    "books_rel_error_max": None}
        return {"layer_wise": True, "rel_error_max": float(np.nanmax(self.rel_error)),
                "rel_error_median": float(np.nanmedian(self.rel_error)),
                "books_rel_error_max": float(np.nanmax(self.books_rel_error))}


def explain_regions(model, x: np.ndarray, masks: np.ndarray, methods: dict) -> list[RegionExplanation]:
    """Explain ``Σ_{v∈masks[n]} z_v`` for each input with each method.

    Parameters
    ----------
    model : keras.Model
        Per-voxel output ``(batch, *spatial, 1)``.
    x : float32 array (n, *spatial, 1)
    masks : bool array (n, *spatial)
        Each input's region; none may be empty.
    methods : dict of str to dict
        Tag → explainer config (``name`` and parameters).

    Returns
    -------
    list of RegionExplanation, in the order of ``methods``
    """
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import analyzer_from_config

    empty = [i for i, m in enumerate(masks) if not m.any()]
    if empty:
        raise SegmentationError(f"unet: the predicted mask of input(s) {empty} is empty: nothing to explain")
    out = []
    for tag, config in methods.items():
        try:
            analyzer = analyzer_from_config(model, config)
        except (TypeError, ValueError) as err:
            raise SegmentationError(f"unet: explain.methods.{tag}: {err}") from None
        e = analyzer.explain(x, target=0, output_mask=masks)
        layer_wise = bool(e.trace)
        out.append(RegionExplanation(
            tag, e.method, np.asarray(e.maps[..., 0], np.float32), e.outputs.astype(np.float64),
            e.relevance_sum.astype(np.float64), e.rel_error if layer_wise else None,
            e.books_rel_error if layer_wise else None))
    return out

"""The result of an explanation: relevance maps and their conservation diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Explanation:
    """Relevance maps and their diagnostics for a batch.

    With ``target="all"`` every array gains a leading class axis (``n_classes``).

    Attributes
    ----------
    maps : numpy.ndarray, float32 (float64 for a float64 model)
        Relevance per input element, shaped like ``x`` (``(n_classes, *x.shape)`` for "all").
    outputs : numpy.ndarray
        The explained value per input: what the method's conservation identity says the map
        sums to (the logit ``z_c``; ``z_c − z_k`` or the log-odds for a contrast;
        ``f(x) − f(x_ref)`` for reference methods; 0 for the zero-sum CLRP and SGLRP).
    target : numpy.ndarray of int
        Explained class per input.
    relevance_sum : numpy.ndarray
        Sum of each map.
    rel_error : numpy.ndarray
        ``|relevance_sum − outputs| / scale`` (NaN where the scale is 0).
    negative_share : numpy.ndarray
        ``Σ|R⁻| / Σ|R|`` per map (0 for an all-zero map).
    trace : dict of str to numpy.ndarray
        Layer-wise relevance methods only: for each layer, output to input, the relevance sum
        at that layer's input after its rule was applied. The chain starts from ``outputs``;
        a step between consecutive entries shows where relevance leaks.
    method : str
    extras : dict
        Method-specific arrays (Grad-CAM: ``cam``, the map at the layer's resolution; reference
        methods: ``reference_outputs``, the explained value at the reference).
    sinks : dict of str to numpy.ndarray
        Layer-wise methods: per layer (same keys as ``trace``) the relevance it absorbed (bias
        and ε shares, outputs with a zero denominator). ``trace`` plus the sinks of the layers
        above balances ``outputs`` (:meth:`balance_rel_error`).
    scale : numpy.ndarray
        What relative errors divide by: ``|outputs|``, or for zero-sum methods the mass of
        one half (CLRP: ``|z_c|``; SGLRP: ``p_c (1 − p_c)``).
    target_mode : str
        The target as one string (``"predicted"``, ``"predicted-vs-mean"``, ...).
    contrast : numpy.ndarray of int
        The contrast class per map for ``-vs-<k>``/``-vs-runnerup`` targets, −1 otherwise.
    """

    maps: np.ndarray
    outputs: np.ndarray
    target: np.ndarray
    relevance_sum: np.ndarray
    rel_error: np.ndarray
    negative_share: np.ndarray
    trace: dict = field(default_factory=dict)
    method: str = ""
    extras: dict = field(default_factory=dict)
    sinks: dict = field(default_factory=dict)
    scale: np.ndarray | None = None
    target_mode: str = "predicted"
    contrast: np.ndarray | None = None

    @property
    def max_rel_error(self) -> float:
        """Largest conservation error over the batch (and classes)."""
        return float(np.nanmax(self.rel_error))

    def _relative(self, value) -> np.ndarray:
        scale = np.abs(self.outputs if self.scale is None else self.scale).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(scale > 0, np.abs(value - self.outputs.astype(np.float64)) / scale, np.nan)

    def trace_rel_error(self) -> dict:
        """Per layer, ``|trace − outputs| / scale``: conservation checked layer by layer."""
        return {k: self._relative(v.astype(np.float64)) for k, v in self.trace.items()}

    def balance_rel_error(self) -> dict:
        """Per layer, ``|trace + sinks of this layer and those above − outputs| / scale``.

        Zero (to rounding) for every rule: what a layer does not pass down it reports as sink.
        """
        absorbed, out = 0.0, {}
        for key, total in self.trace.items():
            absorbed = absorbed + self.sinks.get(key, 0.0)
            out[key] = self._relative(total.astype(np.float64) + absorbed)
        return out

    @property
    def books_rel_error(self) -> np.ndarray:
        """``|Σ maps + Σ sinks − outputs| / scale`` per map: the books of the whole chain."""
        absorbed = sum((v.astype(np.float64) for v in self.sinks.values()), np.zeros_like(self.relevance_sum))
        return self._relative(self.relevance_sum + absorbed)


def _diagnostics(maps: np.ndarray, outputs: np.ndarray, scale: np.ndarray, lead_axes: int):
    """Per map (the first ``lead_axes`` axes index maps): sum, conservation error, negative share."""
    axes = tuple(range(lead_axes, maps.ndim))
    m = maps.astype(np.float64)
    total = m.sum(axis=axes)
    absolute = np.abs(m).sum(axis=axes)
    negative = np.abs(np.minimum(m, 0.0)).sum(axis=axes)
    out = outputs.astype(np.float64)
    scale = np.abs(scale.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_error = np.where(scale > 0, np.abs(total - out) / scale, np.nan)
        negative_share = np.where(absolute > 0, negative / absolute, 0.0)
    return total, rel_error, negative_share


_KNOWN = ("maps", "outputs", "target", "trace", "sinks", "scale", "other")


def explanation_from_result(
    result: dict, trace_names: list, method: str, all_classes: bool, target_mode: str = "predicted"
) -> Explanation:
    """Assemble an :class:`Explanation` from a compiled graph's arrays.

    Parameters
    ----------
    result : dict of str to numpy.ndarray
        ``maps`` (T, batch, ...), ``outputs`` and ``target`` (T, batch), optionally ``other``
        (contrast classes) and ``scale`` (T, batch), ``trace`` and ``sinks`` (layers, T, batch)
        and method-specific extras, each with the leading target axis T.
    trace_names : list of str
        Layer names of the rows of ``result["trace"]``, output to input.
    method : str
    all_classes : bool
        Keep the target axis (``target="all"``); otherwise T is 1 and dropped.
    target_mode : str
        The target as one string, kept on the explanation.
    """
    lead = (lambda v: v) if all_classes else (lambda v: v[0])
    maps = lead(result["maps"].astype(np.promote_types(result["outputs"].dtype, np.float32)))
    outputs = lead(result["outputs"])
    scale = lead(result["scale"]) if "scale" in result else np.abs(outputs)
    other = lead(result["other"].astype(np.int64)) if "other" in result else None
    trace = {k: lead(v) for k, v in zip(trace_names, result["trace"])} if "trace" in result else {}
    sinks = {k: lead(v) for k, v in zip(trace_names, result["sinks"])} if "sinks" in result else {}
    extras = {k: lead(v) for k, v in result.items() if k not in _KNOWN}
    total, rel_error, negative_share = _diagnostics(maps, outputs, scale, 2 if all_classes else 1)
    return Explanation(
        maps=maps,
        outputs=outputs,
        target=lead(result["target"].astype(np.int64)),
        relevance_sum=total,
        rel_error=rel_error,
        negative_share=negative_share,
        trace=trace,
        method=method,
        extras=extras,
        sinks=sinks,
        scale=scale,
        target_mode=target_mode,
        contrast=other,
    )

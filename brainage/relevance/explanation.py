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
    maps : numpy.ndarray, float32
        Relevance per input element, shaped like ``x`` (``(n_classes, *x.shape)`` for "all").
    outputs : numpy.ndarray
        The explained logit (pre-softmax) per input.
    target : numpy.ndarray of int
        Explained class per input.
    relevance_sum : numpy.ndarray
        Sum of each map.
    rel_error : numpy.ndarray
        ``|relevance_sum − output| / |output|`` (NaN where the output is 0).
    negative_share : numpy.ndarray
        ``Σ|R⁻| / Σ|R|`` per map (0 for an all-zero map).
    trace : dict of str to numpy.ndarray
        Layer-wise relevance methods only: for each layer, output to input, the relevance sum
        at that layer's input after its rule was applied. The chain starts from ``outputs``;
        a step between consecutive entries shows where relevance leaks.
    method : str
    extras : dict
        Method-specific arrays (Grad-CAM: ``cam``, the map at the layer's resolution).
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

    @property
    def max_rel_error(self) -> float:
        """Largest conservation error over the batch (and classes)."""
        return float(np.nanmax(self.rel_error))

    def trace_rel_error(self) -> dict:
        """Per layer, ``|trace − output| / |output|``: conservation checked layer by layer."""
        out = np.abs(self.outputs.astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            return {k: np.abs(v - self.outputs) / out for k, v in self.trace.items()}


def _diagnostics(maps: np.ndarray, outputs: np.ndarray, lead_axes: int):
    """Per map (the first ``lead_axes`` axes index maps): sum, conservation error, negative share."""
    axes = tuple(range(lead_axes, maps.ndim))
    m = maps.astype(np.float64)
    total = m.sum(axis=axes)
    absolute = np.abs(m).sum(axis=axes)
    negative = np.abs(np.minimum(m, 0.0)).sum(axis=axes)
    out = outputs.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_error = np.where(out != 0, np.abs(total - out) / np.abs(out), np.nan)
        negative_share = np.where(absolute > 0, negative / absolute, 0.0)
    return total, rel_error, negative_share


def explanation_from_result(result: dict, trace_names: list, method: str, all_classes: bool) -> Explanation:
    """Assemble an :class:`Explanation` from a compiled graph's arrays.

    Parameters
    ----------
    result : dict of str to numpy.ndarray
        ``maps`` (T, batch, ...), ``outputs`` and ``target`` (T, batch), optionally ``trace``
        (layers, T, batch) and method-specific extras, each with the leading target axis T.
    trace_names : list of str
        Layer names of the rows of ``result["trace"]``, output to input.
    method : str
    all_classes : bool
        Keep the target axis (``target="all"``); otherwise T is 1 and dropped.
    """
    maps = result["maps"].astype(np.float32)
    outputs = result["outputs"]
    target = result["target"].astype(np.int64)
    trace = dict(zip(trace_names, result["trace"])) if "trace" in result else {}
    extras = {k: v for k, v in result.items() if k not in ("maps", "outputs", "target", "trace")}
    if not all_classes:
        maps, outputs, target = maps[0], outputs[0], target[0]
        trace = {k: v[0] for k, v in trace.items()}
        extras = {k: v[0] for k, v in extras.items()}
    total, rel_error, negative_share = _diagnostics(maps, outputs, 2 if all_classes else 1)
    return Explanation(
        maps=maps,
        outputs=outputs,
        target=target,
        relevance_sum=total,
        rel_error=rel_error,
        negative_share=negative_share,
        trace=trace,
        method=method,
        extras=extras,
    )

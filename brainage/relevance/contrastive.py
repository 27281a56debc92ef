"""Class-contrastive LRP as published: CLRP (Gu, Yang & Tresp 2018) and SGLRP (Iwana, Kuroki &
Uchida 2019).

Both propagate a *signed* relevance vector from the logits with a composite (by default DTD:
z⁺ on hidden layers, zᴮ at the input, as both papers did). The rules are linear in the output
relevance, so "explanation of the class minus explanation of its dual" is one backward pass with
the difference as the starting relevance. Both are zero-sum: the map sums to 0 (up to dead-unit
leaks, visible in the trace), so ``Explanation.outputs`` is 0 and relative errors are measured
against the mass of one half (``Explanation.scale``).
"""

from __future__ import annotations

import numpy as np
from keras import ops

from brainage.relevance.heads import Head
from brainage.relevance.layerwise import RelevanceAnalyzer
from brainage.relevance.registry import register_method
from brainage.relevance.targets import TargetSpec

CLRP_DUALS = ("others", "negated")


def _require_classes(analyzer, what: str) -> None:
    if analyzer.contrast is not None:
        _refuse_contrast(analyzer, TargetSpec("predicted", analyzer.contrast))
    if analyzer.n_classes < 2:
        raise ValueError(
            f"{analyzer.method}: {what} contrasts the explained class with the others, but the "
            f"model has {analyzer.n_classes} output (a regression); use a non-contrastive method"
        )


def _refuse_contrast(analyzer, spec: TargetSpec) -> None:
    if spec.contrast is not None:
        raise ValueError(
            f"{analyzer.method}: the method is contrastive by construction; target {spec.tag!r} "
            "adds a second contrast: use 'predicted', 'true', 'all' or a class index"
        )


@register_method("clrp", order=10)
class CLRPAnalyzer(RelevanceAnalyzer):
    """Contrastive layer-wise relevance propagation (Gu, Yang & Tresp 2018, CLRP).

    ``R_CLRP = max(0, R − R_dual)``: ``R`` explains the class ``j`` with relevance ``z_j``;
    ``R_dual`` explains a *dual virtual concept* that receives the same score ``z_j``:

    * ``dual="others"`` (the paper's CLRP1): the other classes, ``W̄ = W_{−j}``, each getting
      ``z_j / (n_classes − 1)``;
    * ``dual="negated"`` (CLRP2): one virtual output with the negated weights ``−w_j`` (and bias
      ``−b_j``), merged into the logits layer before the rule is applied.

    Conservation identity: before the clip, ``ΣR − ΣR_dual = z_j − z_j = 0`` layer by layer (the
    trace), with each half summing to ``z_j`` (``scale``). The clip keeps the positive part, so a
    clipped map has no identity (its ``rel_error`` is ``ΣR_CLRP / |z_j|``); ``clip=False`` keeps
    the signed, zero-sum map.

    Parameters
    ----------
    model : keras.Model
        At least two outputs.
    dual : {"others", "negated"}
    clip : bool
        Apply the paper's ``max(0, ·)``.
    composite : Composite or str
        Rules for the two backward passes (default ``"dtd"``, as in the paper).
    **params
        Passed to :class:`RelevanceAnalyzer` (``canonizers``/``bn_mode``, ``low``/``high``,
        ``compile``, ``jit_compile``).
    """

    supports_regions = False  # the dual starts from the logits, not from a region

    def __init__(self, model, *, dual="others", clip=True, composite="dtd", **params):
        if dual not in CLRP_DUALS:
            raise ValueError(f"clrp: dual must be one of {list(CLRP_DUALS)}, got {dual!r}")
        self.dual = dual
        self.clip = bool(clip)
        super().__init__(model, composite, **params)
        self.method = "clrp"
        _require_classes(self, "CLRP")

    def __repr__(self):
        return f"CLRPAnalyzer(dual={self.dual!r}, clip={self.clip}, composite={self.composite!r})"

    def _check_target(self, spec):
        _refuse_contrast(self, spec)

    def _virtual_layer(self, mode):
        if self.dual == "others":
            return None
        eye = np.eye(self.n_classes, dtype=self.dtype)
        return np.concatenate([eye, -eye], axis=1)  # units j (w_j) and n + j (−w_j)

    def _top(self, logits, classes, others, mode) -> Head:
        head = self._select(logits, classes, others, None)
        onehot, z_j = head.cotangent, head.outputs[..., None]
        if self.dual == "negated":
            relevance = ops.concatenate([onehot * z_j, -onehot * z_j], axis=-1)
        else:
            relevance = onehot * z_j - (1.0 - onehot) * z_j / (self.n_classes - 1)
        zero = ops.zeros_like(head.outputs)
        return Head(head.chosen, head.other, zero, head.cotangent, relevance, head.scale)

    def _finish(self, maps):
        return ops.relu(maps) if self.clip else maps


@register_method("sglrp", order=11)
class SGLRPAnalyzer(RelevanceAnalyzer):
    """Softmax-gradient LRP (Iwana, Kuroki & Uchida 2019, SGLRP).

    The relevance of logit ``n`` is the gradient of the class's probability ``p_t``:
    ``∂p_t/∂z_n = p_t (1 − p_t)`` for ``n = t`` and ``−p_t p_n`` otherwise, propagated with the
    composite (default DTD, as published). The positive half is the class, the negative half its
    dual (every other class weighted by its probability).

    Conservation identity: ``ΣR = Σ_n ∂p_t/∂z_n = 0`` layer by layer (softmax is invariant to
    a shift of every logit), each half summing to ``p_t (1 − p_t)`` (``scale``). The authors'
    code rescales the dual half to the target half's sum; for a conservative composite the
    factor is 1, so this is the paper's equation.

    Parameters
    ----------
    model : keras.Model
        At least two outputs.
    composite : Composite or str
    **params
        Passed to :class:`RelevanceAnalyzer`.
    """

    supports_regions = False  # the dual starts from the logits, not from a region

    def __init__(self, model, *, composite="dtd", **params):
        super().__init__(model, composite, **params)
        self.method = "sglrp"
        _require_classes(self, "SGLRP")

    def __repr__(self):
        return f"SGLRPAnalyzer(composite={self.composite!r})"

    def _check_target(self, spec):
        _refuse_contrast(self, spec)

    def _top(self, logits, classes, others, mode) -> Head:
        head = self._select(logits, classes, others, None)
        probabilities = ops.softmax(logits, axis=-1)[None]
        p_t = ops.sum(head.cotangent * probabilities, axis=-1)
        relevance = p_t[..., None] * (head.cotangent - probabilities)
        zero = ops.zeros_like(head.outputs)
        return Head(head.chosen, head.other, zero, relevance, relevance, p_t * (1.0 - p_t))


__all__ = ["CLRPAnalyzer", "SGLRPAnalyzer", "CLRP_DUALS"]

"""Deep Taylor decomposition rooted at a reference input.

DTD explains a neuron's relevance ``R_j`` by a first-order Taylor expansion at a root point
found on a search direction ``v`` from its input ``a`` (seed 000 §2.2). The z⁺ rule searches
towards zero along the positive weights; rooting at a reference, the neuron is expanded between
its input ``a`` and the reference's ``ã`` instead, and the expansion explains
``Δz_j = Σ_i w_ij Δa_i`` with ``Δa = a − ã``. Searching along the contributions that move the
neuron the way it moved (``v_i = Δa_i`` where ``sign(Δa_i w_ij) = sign(Δz_j)``, else 0) gives

    R_i = Σ_j [Δa_i w_ij]^{s_j} / Σ_i' [Δa_i' w_i'j]^{s_j} · R_j,    s_j = sign(Δz_j),

the z⁺ rule of differences: positive shares (no division by a small ``Δz``, unlike the direct
direction ``v = Δa``, which is DeepLIFT's Linear rule), and the denominator is at least
``|Δz_j|``. With ``A_j = Σ_i |Δa_i||w_ij|`` the positive and negative sums are
``(Δz_j ± A_j)/2``, so the rule costs one extra convolution (``|w|`` on ``|Δa|``) forward and
two transposed ones backward:

    R_i = ½ (Δa_i Σ_j w_ij S_j + |Δa_i| Σ_j |w_ij| D_j),   S = s⁺ + s⁻, D = s⁺ − s⁻,

with ``s⁺_j = R_j / P_j`` where ``Δz_j > 0`` and ``s⁻_j = R_j / N_j`` where ``Δz_j < 0``.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from brainage.relevance._backend import value_and_vjp
from brainage.relevance.heads import chain_for, virtual_layer
from brainage.relevance.reference import ReferenceAnalyzer, delta_forward, linear_part, reference_forward
from brainage.relevance.rules import safe_divide, sum_per_input


def signed_difference_rule(forward, forward_abs, da, dz, relevances):
    """The sign-matched rule for one linear map (see the module); returns (relevances, sinks).

    ``forward(v)`` is the map (no bias) and ``forward_abs(v)`` the map with ``|W|``.
    """
    total, vjp_abs = value_and_vjp(forward_abs, [ops.abs(da)])
    _, vjp = value_and_vjp(forward, [da])
    positive, negative = 0.5 * (dz + total), 0.5 * (dz - total)
    out, sinks = [], []
    for relevance in relevances:
        up = safe_divide(ops.where(dz > 0, relevance, 0.0), positive)
        down = safe_divide(ops.where(dz < 0, relevance, 0.0), negative)
        both, diff = up + down, up - down
        out.append(0.5 * (da * vjp(both)[0] + ops.abs(da) * vjp_abs(diff)[0]))
        sinks.append(sum_per_input(relevance - 0.5 * (dz * both + total * diff)))
    return out, sinks


def difference_step(step, da, dz, relevances):
    """Relevance through one step of the chain rooted at the reference: (relevances, sinks)."""
    if step.kind == "linear":
        magnitude = np.abs(step.kernel).astype(np.float32)
        return signed_difference_rule(
            lambda v: step.linear(v, step.kernel), lambda v: step.linear(v, magnitude), da, dz, relevances
        )
    if step.kind == "avgpool":  # positive weights: |W| = W
        return signed_difference_rule(step.pre_activation, step.pre_activation, da, dz, relevances)
    none = [ops.zeros_like(sum_per_input(r)) for r in relevances]
    if step.kind == "reshape":
        return [ops.reshape(r, (-1,) + tuple(da.shape[1:])) for r in relevances], none
    return list(relevances), none  # ReLU, BatchNorm (one-to-one), identities


class ReferenceDTDAnalyzer(ReferenceAnalyzer):
    """DTD rooted at a reference input (``dtd_reference``): the z⁺ rule of differences.

    Every Dense/Conv layer and average pooling uses the sign-matched rule of the module
    docstring; ReLU, BatchNormalization (one input per output) and identities pass relevance on.
    The logits layer starts from the explained difference ``Δz_c`` (a contrast merges its
    difference layer into the logits layer first, as for :class:`RelevanceAnalyzer`). No
    input box is needed: the reference is the input layer's root.

    Conservation identity (completeness): ``ΣR = f(x) − f(x_ref)`` layer by layer, except for
    relevance reaching a unit that did not move (``Δz_j = 0``), which is that layer's sink.
    ``outputs`` is ``f(x) − f(x_ref)``; ``extras["reference_outputs"]`` is ``f(x_ref)``.

    Parameters
    ----------
    See :class:`~brainage.relevance.reference.ReferenceAnalyzer`.
    """

    method = "dtd_reference"

    def __init__(self, model, **params):
        self._chains: dict = {}
        super().__init__(model, **params)

    def _trace_names(self):
        return [s.name for s in reversed(self.steps)]

    def _chain(self, mode):
        if mode not in self._chains:
            self._chains[mode] = chain_for(self.steps, virtual_layer(mode, self.n_classes))
        return self._chains[mode]

    def _graph(self, x, reference, classes, others, mode):
        steps, top = self._chain(mode)
        ref_acts, ref_pres = reference_forward(steps, reference)
        deltas, pre_deltas = delta_forward(steps, x - reference, ref_acts, ref_pres)
        logits_ref, dlogits = ref_acts[-1], deltas[-1]
        if top is not None:  # the real logits: the original layers from the merged one
            logits_ref, dlogits = ref_acts[top], deltas[top]
            for step in self.steps[top:]:
                logits_ref, dlogits = step.forward(logits_ref), linear_part(step, dlogits)
        head, at_ref = self._delta_head(logits_ref, dlogits, classes, others, mode)
        relevances = [head.relevance[i] for i in range(classes.shape[0])]
        trace, sinks = [], []
        for i in reversed(range(len(steps))):
            relevances, absorbed = difference_step(steps[i], deltas[i], pre_deltas[i], relevances)
            trace.append(ops.stack([sum_per_input(r) for r in relevances]))
            sinks.append(ops.stack(absorbed))
        return {"maps": ops.stack(relevances), "outputs": head.outputs, "target": head.chosen,
                "other": head.other, "scale": head.scale, "trace": ops.stack(trace),
                "sinks": ops.stack(sinks), "reference_outputs": at_ref}


__all__ = ["ReferenceDTDAnalyzer", "signed_difference_rule", "difference_step"]

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
from brainage.relevance._dag import chain_dag, is_merge
from brainage.relevance.dag_propagation import merge_relevance, walk_back
from brainage.relevance.heads import chain_for, merge_virtual_layer, virtual_layer
from brainage.relevance.propagation import propagate_step
from brainage.relevance.reference import ReferenceAnalyzer, route_max
from brainage.relevance.registry import register_method
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


def merge_difference_step(step, deltas, dz, relevances):
    """The sign-matched rule on an Add/Subtract (all weights ±1) or Concatenate's slices:
    ``R_k = [±Δa_k]^{s} / Σ_k' [±Δa_k']^{s} · R`` with ``s = sign(Δz)``; (per input, sinks)."""
    if step.kind == "concat":
        return merge_relevance(step, deltas, relevances)
    signed = list(deltas) if step.kind == "add" else [deltas[0], -deltas[1]]
    matched = [ops.where(dz > 0, ops.relu(d), ops.where(dz < 0, -ops.relu(-d), 0.0)) for d in signed]
    total = matched[0]
    for d in matched[1:]:
        total = total + d
    shares = [safe_divide(d, total) for d in matched]
    per_input = [[share * r for r in relevances] for share in shares]
    return per_input, [sum_per_input(ops.where(dz == 0, r, 0.0)) for r in relevances]


def difference_step(step, da, dz, relevances):
    """Relevance through one single-input step rooted at the reference: (relevances, sinks)."""
    if step.kind == "linear":
        magnitude = np.abs(step.kernel)
        return signed_difference_rule(
            lambda v: step.linear(v, step.kernel), lambda v: step.linear(v, magnitude), da, dz, relevances
        )
    if step.kind == "avgpool":  # positive weights: |W| = W
        return signed_difference_rule(step.pre_activation, step.pre_activation, da, dz, relevances)
    if step.kind == "index":  # copies summed back; relevance of padded zeros is the sink
        return propagate_step(step, da, relevances, None, None)
    none = [ops.zeros_like(sum_per_input(r)) for r in relevances]
    if step.kind == "reshape":
        return [ops.reshape(r, (-1,) + tuple(da.shape[1:])) for r in relevances], none
    return list(relevances), none  # ReLU, BatchNorm, Rescaling (one-to-one), identities


@register_method("dtd_reference", order=13)
class ReferenceDTDAnalyzer(ReferenceAnalyzer):
    """DTD rooted at a reference input (``dtd_reference``): the z⁺ rule of differences.

    Every Dense/Conv layer and average pooling uses the sign-matched rule of the module
    docstring, and so do Add and Subtract (weights ±1); Concatenate hands each input its slice,
    copies (UpSampling, Cropping, ZeroPadding) send relevance back through their transpose, max
    pooling to one input of each window
    (:func:`~brainage.relevance.reference.route_max`); ReLU, BatchNormalization, Rescaling
    (one input per output) and identities pass relevance on; a tensor read twice sums its
    relevances. The logits layer starts from the explained difference ``Δz_c`` (a contrast
    merges its difference layer into the logits layer first, as for
    :class:`RelevanceAnalyzer`). No input box is needed: the reference is the input layer's root.

    Conservation identity (completeness): ``ΣR = f(x) − f(x_ref)`` node by node, except for
    relevance reaching a unit that did not move (``Δz_j = 0``) or a padded zero, which is that
    node's sink. ``outputs`` is ``f(x) − f(x_ref)``; ``extras["reference_outputs"]`` is
    ``f(x_ref)``.

    Parameters
    ----------
    See :class:`~brainage.relevance.reference.ReferenceAnalyzer`.
    """

    method = "dtd_reference"

    def __init__(self, model, **params):
        self._graphs: dict = {}
        super().__init__(model, **params)

    def _graph_for(self, mode):
        virtual = virtual_layer(mode, self.n_classes)
        if virtual is None:
            return self.graph, None
        if mode not in self._graphs:
            if self.dag is None:
                steps, top = chain_for(self.steps, virtual)
                self._graphs[mode] = chain_dag(steps), top
            else:
                merged, _ = merge_virtual_layer([self.dag.producer(self.dag.output).step], virtual)
                self._graphs[mode] = self.dag.with_output_step(merged[0]), len(self.dag.nodes) - 1
        return self._graphs[mode]

    def _propagate(self, graph, diffs, head, n_targets):
        def node_rule(index, node, relevances):
            step, dz = node.step, diffs.pre_deltas[index]
            deltas = [diffs.deltas[t] for t in node.inputs]
            if is_merge(step):
                return merge_difference_step(step, deltas, dz, relevances)
            if step.kind == "maxpool":
                routed = route_max(step, diffs.reference[node.inputs[0]], deltas[0], dz, relevances)
                return [routed], [ops.zeros_like(sum_per_input(r)) for r in relevances]
            r_in, absorbed = difference_step(step, deltas[0], dz, relevances)
            return [r_in], absorbed

        start = [head.relevance[i] for i in range(n_targets)]
        return walk_back(graph, start, node_rule, lambda t, r: sum_per_input(r))


__all__ = ["ReferenceDTDAnalyzer", "signed_difference_rule", "difference_step", "merge_difference_step"]

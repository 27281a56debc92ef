"""DeepLIFT with the Rescale rule (Shrikumar, Greenside & Kundaje 2017)."""

from __future__ import annotations

from keras import ops

from brainage.relevance._backend import value_and_vjp
from brainage.relevance.dag_propagation import walk_back
from brainage.relevance.reference import ReferenceAnalyzer, difference_map, route_max
from brainage.relevance.registry import register_method
from brainage.relevance.rules import sum_per_input

# |Δz| at or below this counts as no difference: the ReLU's multiplier falls back to its
# gradient (the difference it multiplies is then ~0, so completeness does not depend on it).
DELTA_FLOOR = 1e-12


def rescale_multiplier(z_ref, dz, da):
    """ReLU multiplier ``Δa / Δz``, or the gradient ``1[z > 0]`` where ``|Δz| ≤ DELTA_FLOOR``."""
    moved = ops.abs(dz) > DELTA_FLOOR
    ratio = da / ops.where(moved, dz, 1.0)
    gradient = ops.cast((z_ref + dz) > 0, dz.dtype)
    return ops.where(moved, ratio, gradient)


def _multipliers_through(step, index, node, diffs, multipliers):
    """DeepLIFT multipliers of one node's input tensors from those of its output."""
    if step.relu:
        ratio = rescale_multiplier(diffs.pre_reference[index], diffs.pre_deltas[index],
                                   diffs.deltas[node.output])
        multipliers = [m * ratio for m in multipliers]
    deltas = [diffs.deltas[t] for t in node.inputs]
    if step.kind == "maxpool":  # contributions m·Δy routed to one input each, then per unit of Δa
        dy, da = diffs.pre_deltas[index], deltas[0]
        routed = route_max(step, diffs.reference[node.inputs[0]], da, dy, [m * dy for m in multipliers])
        moved = ops.abs(da) > DELTA_FLOOR
        return [[ops.where(moved, r / ops.where(moved, da, 1.0), 0.0) for r in routed]]
    _, vjp = value_and_vjp(difference_map(step), deltas)
    per_multiplier = [vjp(m) for m in multipliers]
    return [[p[k] for p in per_multiplier] for k in range(len(deltas))]


@register_method("deeplift", order=12)
class DeepLiftAnalyzer(ReferenceAnalyzer):
    """DeepLIFT-Rescale: ``R = m ⊙ (x − x_ref)`` with multipliers ``m`` back-propagated.

    Linear layers (Dense/Conv, BatchNormalization, average pooling, Flatten, copies) and merges
    (Add, Subtract, Concatenate) pass multipliers by their transposed weights
    (``m_in = Wᵀ m_out``, exact: differences of affine maps are linear); each ReLU multiplies
    them by ``Δa/Δz`` (the Rescale rule), with the gradient where ``Δz = 0``; max pooling hands
    each output's contribution ``m Δy`` to one input of its window
    (:func:`~brainage.relevance.reference.route_max`). The multipliers of the logits are the
    gradient of the explained value (``e_c``, ``e_c − e_k``, ..., a region's mask). A tensor
    read twice sums its multipliers.

    Conservation identity (summation-to-delta, *completeness*): ``ΣR = f(x) − f(x_ref)``, and
    after every node ``Σ m ⊙ Δa`` over the tensors still to be propagated equals the same value
    (the trace). Biases cancel in differences, so there are no sinks. ``outputs`` is
    ``f(x) − f(x_ref)``; ``extras["reference_outputs"]`` is ``f(x_ref)``.

    Parameters
    ----------
    See :class:`~brainage.relevance.reference.ReferenceAnalyzer`.
    """

    method = "deeplift"

    def _propagate(self, graph, diffs, head, n_targets):
        def node_rule(index, node, multipliers):
            return _multipliers_through(node.step, index, node, diffs, multipliers), None

        def contribution(tensor, m):
            return sum_per_input(m * diffs.deltas[tensor])

        start = [head.cotangent[i] for i in range(n_targets)]
        multipliers, trace, _ = walk_back(graph, start, node_rule, contribution)
        maps = [m * diffs.deltas[0] for m in multipliers]
        return maps, trace, [ops.zeros_like(t) for t in trace]


__all__ = ["DeepLiftAnalyzer", "rescale_multiplier", "DELTA_FLOOR"]

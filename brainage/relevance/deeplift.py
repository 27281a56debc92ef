"""DeepLIFT with the Rescale rule (Shrikumar, Greenside & Kundaje 2017)."""

from __future__ import annotations

import functools

from keras import ops

from brainage.relevance._backend import value_and_vjp
from brainage.relevance.reference import ReferenceAnalyzer, delta_forward, linear_part, reference_forward
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


class DeepLiftAnalyzer(ReferenceAnalyzer):
    """DeepLIFT-Rescale: ``R = m ⊙ (x − x_ref)`` with multipliers ``m`` back-propagated.

    Linear layers (Dense/Conv, BatchNormalization, average pooling, Flatten) pass multipliers
    by their transposed weights (``m_in = Wᵀ m_out``, exact: differences of affine maps are
    linear); each ReLU multiplies them by ``Δa/Δz`` (the Rescale rule), with the gradient where
    ``Δz = 0``. The multipliers of the logits are the gradient of the explained value (``e_c``,
    ``e_c − e_k``, ...).

    Conservation identity (summation-to-delta, *completeness*): ``ΣR = f(x) − f(x_ref)``, and at
    every layer ``Σ m ⊙ Δa`` equals the same value (the trace). Biases cancel in differences, so
    there are no sinks. ``outputs`` is ``f(x) − f(x_ref)``; ``extras["reference_outputs"]`` is
    ``f(x_ref)``.

    Parameters
    ----------
    See :class:`~brainage.relevance.reference.ReferenceAnalyzer`.
    """

    method = "deeplift"

    def _trace_names(self):
        return [s.name for s in reversed(self.steps)]

    def _graph(self, x, reference, classes, others, mode):
        steps = self.steps
        ref_acts, ref_pres = reference_forward(steps, reference)
        deltas, pre_deltas = delta_forward(steps, x - reference, ref_acts, ref_pres)
        head, at_ref = self._delta_head(ref_acts[-1], deltas[-1], classes, others, mode)
        multipliers = [head.cotangent[i] for i in range(classes.shape[0])]
        trace = []
        for i in reversed(range(len(steps))):
            if steps[i].relu:
                ratio = rescale_multiplier(ref_pres[i], pre_deltas[i], deltas[i + 1])
                multipliers = [m * ratio for m in multipliers]
            _, vjp = value_and_vjp(functools.partial(linear_part, steps[i]), [deltas[i]])
            multipliers = [vjp(m)[0] for m in multipliers]
            trace.append(ops.stack([sum_per_input(m * deltas[i]) for m in multipliers]))
        trace = ops.stack(trace)
        return {"maps": ops.stack([m * deltas[0] for m in multipliers]), "outputs": head.outputs,
                "target": head.chosen, "other": head.other, "scale": head.scale, "trace": trace,
                "sinks": ops.zeros_like(trace), "reference_outputs": at_ref}


__all__ = ["DeepLiftAnalyzer", "rescale_multiplier", "DELTA_FLOOR"]

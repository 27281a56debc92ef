"""What reference-based methods share: a reference input and differences ``x − x_ref``.

A reference method explains ``f(x) − f(x_ref)`` for a reference input ``x_ref`` (an array
broadcastable to one input: zeros, the training split's mean image, the mean image of the
youngest age bin, ...). :func:`reference_forward` runs the reference through the chain once
(batch 1, shared by the batch); :func:`delta_forward` then carries the differences through the
chain: exactly linearly through Dense/Conv, BatchNormalization, average pooling and reshapes
(biases and shifts cancel), and through each ReLU as ``relu(z_ref + Δz) − relu(z_ref)``. The
explained value is computed from those differences too, so the completeness identity
``ΣR = f(x) − f(x_ref)`` is not spoiled by subtracting two large logits.

Max pooling is refused: ``Δ max`` is not a sum of per-input differences, so no choice of
multipliers makes every layer complete.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from keras import ops

from brainage.relevance._graph import Step
from brainage.relevance.analyzer import Analyzer
from brainage.relevance.canonizers import Canonizer
from brainage.relevance.explanation import Explanation
from brainage.relevance.heads import Head
from brainage.relevance.targets import TargetSpec

# Where the linear part of this step is identity (Dropout, ReLU layers, folded BN).
_PASS_KINDS = ("relu", "identity")


def linear_part(step: Step, v):
    """The step's map without its offset (bias, BN shift): how a difference of inputs maps."""
    if step.kind == "linear":
        return step.linear(v, step.kernel)
    if step.kind == "bn":
        return v * step.scale
    if step.kind in ("avgpool", "reshape"):
        return step.pre_activation(v)
    if step.kind in _PASS_KINDS:
        return v
    raise ValueError(f"layer {step.name!r} ({step.kind}): no linear part")


def reference_forward(steps: Sequence[Step], reference) -> tuple[list, list]:
    """Activations (input and every step's output) and pre-activations of the reference."""
    acts, pres = [reference], []
    for step in steps:
        z = step.pre_activation(acts[-1])
        pres.append(z)
        acts.append(ops.relu(z) if step.relu else z)
    return acts, pres


def delta_forward(steps: Sequence[Step], delta, ref_acts: list, ref_pres: list) -> tuple[list, list]:
    """Differences to the reference through the chain.

    Returns
    -------
    deltas : list of tensors
        ``Δa`` at the input and after every step (the last: the logits' differences).
    pre_deltas : list of tensors
        Per step, ``Δz``: the difference of its pre-activation, ``linear_part(step, Δa)``.
    """
    deltas, pre_deltas = [delta], []
    for i, step in enumerate(steps):
        dz = linear_part(step, deltas[-1])
        pre_deltas.append(dz)
        deltas.append(ops.relu(ref_pres[i] + dz) - ref_acts[i + 1] if step.relu else dz)
    return deltas, pre_deltas


class ReferenceAnalyzer(Analyzer):
    """Base of the methods that explain ``f(x) − f(x_ref)`` (subclasses write ``_graph``).

    Parameters
    ----------
    model : keras.Model
        A chain without max pooling.
    reference : float or array-like
        ``x_ref``, broadcastable to one input (without the batch axis). Default: zeros.
        :meth:`explain` takes another one per call.
    canonizers, bn_mode, compile, jit_compile, contrast
        See :class:`~brainage.relevance.Analyzer`. Contrasts must be linear in the logits
        (``-vs-<k>``, ``-vs-runnerup``, ``-vs-mean``); the log-odds are refused.
    """

    def __init__(self, model, *, reference=0.0, canonizers: Sequence[Canonizer] | None = None,
                 bn_mode: str | None = None, compile=True, jit_compile=False, contrast=None):
        super().__init__(model, canonizers=canonizers, bn_mode=bn_mode, compile=compile,
                         jit_compile=jit_compile, contrast=contrast)
        for step in self.steps:
            if step.kind == "maxpool":
                raise ValueError(
                    f"{self.method}: layer {step.name!r} ({type(step.layer).__name__}) is max "
                    "pooling; f(x) − f(x_ref) cannot be split completely over the inputs of a "
                    "maximum. Reference methods explain chains with average pooling only"
                )
        self._check_target(TargetSpec("predicted", self.contrast))
        self.reference = reference

    @property
    def reference(self) -> np.ndarray:
        """The default reference input (float32, broadcastable to one input)."""
        return self._reference

    @reference.setter
    def reference(self, value):
        self._reference = self._checked_reference(value)

    def _checked_reference(self, value) -> np.ndarray:
        if isinstance(value, str):  # e.g. youngest_mean: an image of a cohort the engine lacks
            raise ValueError(f"{self.method}: reference {value!r} names an image of the cohort; "
                             "the explain and evaluate stages resolve it, here pass the array")
        reference = np.asarray(value, dtype=np.float32)
        shape = tuple(1 if d is None else d for d in self.input_shape)
        try:
            np.broadcast_shapes(reference.shape, shape)
        except ValueError:
            raise ValueError(
                f"{self.method}: reference of shape {reference.shape} does not broadcast to one "
                f"input of shape {tuple(self.input_shape)}"
            ) from None
        if reference.ndim > len(shape):
            raise ValueError(f"{self.method}: reference of shape {reference.shape} has more axes "
                             f"than one input {tuple(self.input_shape)}; give one reference")
        return reference

    def explain(self, x, target="predicted", labels=None, contrast=None, reference=None) -> Explanation:
        """Explain ``f(x) − f(x_ref)``; see :meth:`Analyzer.explain`.

        Parameters
        ----------
        reference : float or array-like, optional
            ``x_ref`` for this call (default: the analyzer's ``reference``).
        """
        x, spec, classes, others = self._prepare(x, target, labels, contrast)
        chosen = self.reference if reference is None else self._checked_reference(reference)
        reference = np.broadcast_to(chosen, x.shape[1:]).astype(np.float32)[None]
        result = self._compiled(spec.mode)(x, reference, classes, others)
        return self._assemble({k: ops.convert_to_numpy(v) for k, v in result.items()}, spec)

    def _check_target(self, spec):
        if spec.mode == "logodds":
            raise ValueError(
                f"{self.method}: target {spec.tag!r}: the log-odds are not linear in the logits, "
                "so their difference to the reference has no exact split; use '-vs-mean', "
                "'-vs-runnerup' or '-vs-<class>'"
            )

    def _run(self, x, classes, others, mode):  # pragma: no cover - explain() passes the reference
        raise NotImplementedError("reference methods run through explain()")

    def _delta_head(self, logits_ref, dlogits, classes, others, mode) -> tuple[Head, object]:
        """The head of the difference: chosen at ``x``, evaluated on the logits' differences.

        Every accepted target is linear in the logits, so the head of ``Δlogits`` holds the
        explained difference (``outputs``), its gradient and the top units' relevance.
        Also returns the explained value at the reference.
        """
        at_x = self._select(logits_ref + dlogits, classes, others, mode)
        head = self._select(dlogits, at_x.chosen, at_x.other, mode)
        at_ref = self._select(logits_ref, at_x.chosen, at_x.other, mode)
        return head, at_ref.outputs

__all__ = ["ReferenceAnalyzer", "linear_part", "reference_forward", "delta_forward"]

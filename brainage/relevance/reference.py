"""What reference-based methods share: a reference input and differences ``x − x_ref``.

A reference method explains ``f(x) − f(x_ref)`` for a reference input ``x_ref`` (an array
broadcastable to one input: zeros, the training split's mean image, the mean image of the
youngest age bin, ...). :func:`difference_forward` runs the reference through the graph once
(batch 1, shared by the batch) and carries the differences through it: exactly linearly through
Dense/Conv, BatchNormalization, Rescaling, average pooling, reshapes, copies (UpSampling,
Cropping, ZeroPadding) and merges (biases and shifts cancel), through each ReLU as
``relu(z_ref + Δz) − relu(z_ref)`` and through max pooling as ``max(a_ref + Δa) − max(a_ref)``.
The explained value is computed from those differences too, so the completeness identity
``ΣR = f(x) − f(x_ref)`` is not spoiled by subtracting two large logits. Chains run as graphs
(:func:`~brainage.relevance._dag.chain_dag`).

Max pooling hands each output's difference to one input (:func:`route_max`): the window's
maximum at ``x`` where the output rose (``Δy ≥ 0``), the maximum at the reference where it fell.
That input moved at least as far as the output (``|Δa| ≥ |Δy|``, with the same sign), so the
split is complete and bounded: the cross-maximum split of Captum's DeepLIFT.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from keras import ops

from brainage.relevance._dag import Dag, chain_dag, is_merge
from brainage.relevance._graph import Step
from brainage.relevance.analyzer import Analyzer
from brainage.relevance.canonizers import Canonizer
from brainage.relevance.dag_propagation import merge_forward
from brainage.relevance.explanation import Explanation
from brainage.relevance.heads import Head, region_head
from brainage.relevance.propagation import to_window_maximum
from brainage.relevance.targets import TargetSpec

# Where the linear part of this step is identity (Dropout, ReLU layers, folded BN).
_PASS_KINDS = ("relu", "identity")


def linear_part(step: Step, v):
    """The step's map without its offset (bias, BN shift): how a difference of inputs maps."""
    if step.kind == "linear":
        return step.linear(v, step.kernel)
    if step.kind in ("bn", "affine"):
        return v * step.scale
    if step.kind in ("avgpool", "reshape", "index"):  # linear, no offset (padding adds zeros)
        return step.pre_activation(v)
    if step.kind in _PASS_KINDS:
        return v
    raise ValueError(f"layer {step.name!r} ({step.kind}): no linear part")


def difference_map(step: Step):
    """``Δinputs ↦ Δz`` of a linear step or a merge (a function of one or several tensors)."""
    if is_merge(step):
        return lambda *deltas: merge_forward(step, list(deltas))
    return lambda delta: linear_part(step, delta)


@dataclasses.dataclass
class Differences:
    """One forward pass of the reference and of the differences to it, by tensor and node.

    Attributes
    ----------
    reference : dict
        Every tensor at the reference (batch 1).
    deltas : dict
        Every tensor's difference ``Δa`` (the batch).
    pre_reference, pre_deltas : list
        Per node, its pre-activation at the reference and its difference ``Δz``.
    """

    reference: dict
    deltas: dict
    pre_reference: list
    pre_deltas: list


def difference_forward(dag: Dag, reference, delta) -> Differences:
    """The reference and the differences ``x − x_ref`` through the graph (see the module)."""
    ref, deltas, pre_ref, pre_deltas = {0: reference}, {0: delta}, [], []
    for node in dag.nodes:
        step = node.step
        ins, d_ins = [ref[t] for t in node.inputs], [deltas[t] for t in node.inputs]
        if is_merge(step):
            z, dz = merge_forward(step, ins), merge_forward(step, d_ins)
        elif step.kind == "maxpool":
            z = step.pre_activation(ins[0])
            dz = step.pre_activation(ins[0] + d_ins[0]) - z
        else:
            z, dz = step.pre_activation(ins[0]), linear_part(step, d_ins[0])
        pre_ref.append(z)
        pre_deltas.append(dz)
        ref[node.output] = ops.relu(z) if step.relu else z
        deltas[node.output] = ops.relu(z + dz) - ref[node.output] if step.relu else dz
    return Differences(ref, deltas, pre_ref, pre_deltas)


def route_max(step: Step, a_ref, da, dy, values: list) -> list:
    """Each max-pooling output's value (a share of ``Δy``) handed to one input of its window:
    the maximum at ``x`` where ``Δy ≥ 0``, the maximum at the reference elsewhere."""
    at_x, at_ref = a_ref + da, ops.broadcast_to(a_ref, da.shape)
    rose = dy >= 0
    return [to_window_maximum(step, at_x, ops.where(rose, v, 0.0))
            + to_window_maximum(step, at_ref, ops.where(rose, 0.0, v)) for v in values]


class ReferenceAnalyzer(Analyzer):
    """Base of the methods that explain ``f(x) − f(x_ref)`` (subclasses write ``_propagate``).

    Parameters
    ----------
    model : keras.Model
        A chain or any functional graph the engine parses (branches, merges, max pooling,
        per-voxel outputs: see ``output_mask`` of :meth:`Analyzer.explain`).
    reference : float or array-like
        ``x_ref``, broadcastable to one input (without the batch axis). Default: zeros.
        :meth:`explain` takes another one per call.
    canonizers, bn_mode, compile, jit_compile, contrast
        See :class:`~brainage.relevance.Analyzer`. Contrasts must be linear in the logits
        (``-vs-<k>``, ``-vs-runnerup``, ``-vs-mean``); the log-odds are refused.
    """

    supports_dag = True
    supports_regions = True

    def __init__(self, model, *, reference=0.0, canonizers: Sequence[Canonizer] | None = None,
                 bn_mode: str | None = None, compile=True, jit_compile=False, contrast=None):
        super().__init__(model, canonizers=canonizers, bn_mode=bn_mode, compile=compile,
                         jit_compile=jit_compile, contrast=contrast)
        self.graph = self.dag if self.dag is not None else chain_dag(self.steps)
        self._check_target(TargetSpec("predicted", self.contrast))
        self.reference = reference

    @property
    def reference(self) -> np.ndarray:
        """The default reference input (in the engine's float type, broadcastable to one input)."""
        return self._reference

    @reference.setter
    def reference(self, value):
        self._reference = self._checked_reference(value)

    def _checked_reference(self, value) -> np.ndarray:
        if isinstance(value, str):  # e.g. youngest_mean: an image of a cohort the engine lacks
            raise ValueError(f"{self.method}: reference {value!r} names an image of the cohort; "
                             "the explain and evaluate stages resolve it, here pass the array")
        reference = np.asarray(value, dtype=self.dtype)
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

    def explain(self, x, target="predicted", labels=None, contrast=None, reference=None,
                output_mask=None) -> Explanation:
        """Explain ``f(x) − f(x_ref)``; see :meth:`Analyzer.explain`.

        Parameters
        ----------
        reference : float or array-like, optional
            ``x_ref`` for this call (default: the analyzer's ``reference``).
        output_mask : array-like of bool, optional
            A region of a per-voxel output: explains ``Σ_{v∈mask} (z_{v,c}(x) − z_{v,c}(x_ref))``.
        """
        chosen = self.reference if reference is None else self._checked_reference(reference)
        if output_mask is not None or self.output_spatial:
            x, spec, classes, mask = self._region_inputs(x, target, contrast, output_mask)
            graph, args = self._compiled_region(), (classes, mask)
        else:
            x, spec, classes, others = self._prepare(x, target, labels, contrast)
            graph, args = self._compiled(spec.mode), (classes, others)
        reference = np.broadcast_to(chosen, x.shape[1:]).astype(x.dtype)[None]
        result = graph(x, reference, *args)
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

    def _trace_names(self):
        return self._node_trace_names()

    def _graph_for(self, mode) -> tuple[Dag, int | None]:
        """``(graph, top)``: the graph the mode propagates through; ``top`` indexes a node whose
        step differs from the model's (a merged contrast layer, :class:`ReferenceDTDAnalyzer`)."""
        return self.graph, None

    def _graph(self, x, reference, classes, others, mode):
        graph, top = self._graph_for(mode)
        diffs = difference_forward(graph, reference, x - reference)
        logits_ref, dlogits = diffs.reference[graph.output], diffs.deltas[graph.output]
        if top is not None:  # the real logits, for the head: the model's steps from ``top``
            tensor = graph.nodes[top].inputs[0]
            logits_ref, dlogits = diffs.reference[tensor], diffs.deltas[tensor]
            for node in self.graph.nodes[top:]:
                logits_ref, dlogits = node.step.forward(logits_ref), linear_part(node.step, dlogits)
        head, at_ref = self._delta_head(logits_ref, dlogits, classes, others, mode)
        return self._result(graph, diffs, head, at_ref, classes.shape[0])

    def _region_graph(self, x, reference, classes, mask):
        diffs = difference_forward(self.graph, reference, x - reference)
        delta = diffs.deltas[self.graph.output]
        head = region_head(delta, classes, mask)
        at_ref = region_head(ops.broadcast_to(diffs.reference[self.graph.output], delta.shape),
                             classes, mask).outputs
        return self._result(self.graph, diffs, head, at_ref, classes.shape[0])

    def _result(self, graph, diffs, head, at_ref, n_targets) -> dict:
        maps, trace, sinks = self._propagate(graph, diffs, head, n_targets)
        return {"maps": ops.stack(maps), "outputs": head.outputs, "target": head.chosen,
                "other": head.other, "scale": head.scale, "trace": ops.stack(trace),
                "sinks": ops.stack(sinks), "reference_outputs": at_ref}

    def _propagate(self, graph, diffs, head, n_targets):  # pragma: no cover - interface
        """``(maps, trace, sinks)``: input maps (one per target), per node the traced sum and the
        absorbed relevance (each (T, batch)), output to input."""
        raise NotImplementedError

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


__all__ = ["ReferenceAnalyzer", "Differences", "linear_part", "difference_map", "difference_forward",
           "route_max"]

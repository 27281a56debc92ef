"""Turn any Keras functional model into a directed acyclic graph of explainable steps.

A :class:`Dag` holds the model's operations as :class:`DagNode` objects in topological order
(every node after the nodes that produce its inputs). Tensors are numbered: 0 is the model input,
each node writes one tensor. A tensor read by several nodes (fan-out) collects their relevances;
merges (Add, Subtract, Concatenate) read several tensors. A chain is a DAG too; analyzers keep
their chain code for chains (:mod:`brainage.relevance._graph`) and use this one for the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras

from brainage.relevance._dag_steps import MERGE_KINDS, step_for_operation
from brainage.relevance._graph import Step, _activation_name
from brainage.relevance.canonizers import MergeBatchNorm, _check_mergeable, _merge

# Steps whose output has the sign of their input (a ReLU output stays ≥ 0 through them).
_SIGN_KEEPING = ("avgpool", "maxpool", "reshape", "identity", "index", "add", "concat")


@dataclasses.dataclass
class DagNode:
    """One operation of the graph: its step, the tensors it reads and the tensor it writes."""

    step: Step
    inputs: tuple[int, ...]
    output: int


@dataclasses.dataclass
class Dag:
    """The model as nodes in topological order; tensor 0 is the input, ``output`` the logits.

    Attributes
    ----------
    nodes : list of DagNode
    output : int
        The tensor relevance starts from (before a final softmax, which is dropped).
    """

    nodes: list[DagNode]
    output: int

    @property
    def steps(self) -> list[Step]:
        """Every node's step, input to output (composites assign rules from this list)."""
        return [node.step for node in self.nodes]

    def producer(self, tensor: int) -> DagNode | None:
        """The node writing ``tensor`` (None for the input)."""
        return next((n for n in self.nodes if n.output == tensor), None)

    def readers(self, tensor: int) -> list[DagNode]:
        """The nodes reading ``tensor``."""
        return [n for n in self.nodes if tensor in n.inputs]

    def with_output_step(self, step: Step) -> Dag:
        """The same graph with the output node's step replaced (a merged virtual layer)."""
        last = self.producer(self.output)
        nodes = [dataclasses.replace(n, step=step) if n is last else n for n in self.nodes]
        return Dag(nodes, self.output)


def _parse(model) -> Dag:
    """Walk back from the output; a node is appended after the nodes producing its inputs."""
    ids = {id(model.inputs[0]): 0}
    nodes: list[DagNode] = []
    done: dict = {}

    def visit(tensor) -> int:
        if id(tensor) in ids:
            return ids[id(tensor)]
        op, node_index, _ = tensor._keras_history
        if isinstance(op, keras.layers.InputLayer):
            raise ValueError(f"model {model.name!r}: input {op.name!r} is not the model's input")
        node = op._inbound_nodes[node_index]
        if len(node.output_tensors) != 1:
            raise ValueError(f"operation {op.name!r} has {len(node.output_tensors)} outputs; the "
                             "relevance engine explains operations with one output")
        inputs = tuple(visit(t) for t in node.input_tensors)
        key = (id(op), node_index)
        if key not in done:  # a layer called twice (shared weights) is two nodes
            step = step_for_operation(op, node, is_last=tensor is model.outputs[0])
            done[key] = len(ids)
            nodes.append(DagNode(step, inputs, len(ids)))
        ids[id(tensor)] = done[key]
        return done[key]

    return Dag(nodes, visit(model.outputs[0]))


def _drop_softmax(dag: Dag) -> Dag:
    """A final softmax layer is dropped: relevance starts at the logits."""
    last = dag.producer(dag.output)
    act = _activation_name(getattr(last.step.layer, "activation", None))
    if last.step.kind == "identity" and act == "softmax":
        return Dag([n for n in dag.nodes if n is not last], last.inputs[0])
    return dag


def _canonize(dag: Dag, canonizers: Sequence) -> Dag:
    """Fold each BatchNormalization into the Dense/Conv that alone feeds it (MergeBatchNorm)."""
    for canonizer in canonizers:
        if not isinstance(canonizer, MergeBatchNorm):
            raise ValueError(f"canonizer {canonizer!r}: only MergeBatchNorm applies to branching "
                             "graphs")
        for node in [n for n in dag.nodes if n.step.kind == "bn"]:
            before = dag.producer(node.inputs[0])
            before_step = before.step if before is not None else None
            if before is not None and len(dag.readers(before.output)) > 1:
                before_step = None  # its output is also read elsewhere: folding would change that
            _check_mergeable(node.step, before_step)
            before.step = _merge(before.step, node.step)
            node.step = Step(node.step.name, "identity", node.step.layer)
    return dag


def _mark_nonnegative_inputs(dag: Dag) -> None:
    """``nonnegative_input`` for every single-input step whose input is known to be ≥ 0."""
    nonnegative = {0: False}
    for node in dag.nodes:
        step = node.step
        step.nonnegative_input = all(nonnegative[t] for t in node.inputs)
        keeps = step.kind in _SIGN_KEEPING and step.nonnegative_input
        nonnegative[node.output] = bool(step.relu or keeps)


def build_dag(model, canonizers: Sequence = ()) -> Dag:
    """Parse a built single-input, single-output Keras model into a :class:`Dag`.

    Parameters
    ----------
    model : keras.Model
        Functional (or Sequential) model; branches, merges and shared tensors are allowed,
        nested models are not.
    canonizers : sequence of Canonizer
        Only :class:`~brainage.relevance.canonizers.MergeBatchNorm`: each BatchNormalization is
        folded into the Dense/Conv before it, which must feed nothing else.
    """
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built; call it on an input first")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"model {model.name!r}: the relevance engine explains single-input, single-output "
            f"models; got {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    dag = _parse(model)
    if not dag.nodes:
        raise ValueError(f"model {model.name!r} has no layers to explain")
    dag = _canonize(_drop_softmax(dag), canonizers)
    _mark_nonnegative_inputs(dag)
    return dag


def chain_dag(steps: Sequence[Step]) -> Dag:
    """A chain of steps as a :class:`Dag` (step ``i`` reads tensor ``i``, writes ``i + 1``), so
    graph code explains chains too."""
    return Dag([DagNode(step, (i,), i + 1) for i, step in enumerate(steps)], len(steps))


def is_merge(step: Step) -> bool:
    """Whether ``step`` reads several tensors (Add, Subtract, Concatenate)."""
    return step.kind in MERGE_KINDS


__all__ = ["Dag", "DagNode", "build_dag", "chain_dag", "is_merge"]

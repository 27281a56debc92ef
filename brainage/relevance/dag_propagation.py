"""Layer-wise relevance propagation through a directed acyclic graph of steps.

:func:`dag_forward` runs the graph once, keeping every tensor and the rules' fused modified
outputs; :func:`propagate_dag` walks the nodes from the output back to the input. Single-input
steps use :func:`~brainage.relevance.propagation.propagate_step` (the chain's rules, unchanged);
merges use :func:`merge_relevance`. A tensor read by several nodes (fan-out) receives the sum of
their relevances; it is passed on once every reader has been processed, which the reversed
topological order guarantees.

The conservation trace of a graph is the relevance on its *frontier*: after each node, the sum of
the relevance held by every tensor still waiting to be passed on. For a chain that is the relevance
at the node's input, as in :func:`~brainage.relevance.propagation.propagate_chain`.
"""

from __future__ import annotations

from keras import ops

from brainage.relevance._backend import value_and_vjp
from brainage.relevance._dag import Dag, is_merge
from brainage.relevance.propagation import linear_forward, propagate_step
from brainage.relevance.rules import ZERO_DENOMINATOR, safe_divide, sum_per_input


def merge_forward(step, inputs: list):
    """The output of an Add, Subtract or Concatenate step."""
    if step.kind == "concat":
        return ops.concatenate(inputs, axis=step.conv_args["axis"])
    if step.kind == "subtract":
        return inputs[0] - inputs[1]
    total = inputs[0]
    for x in inputs[1:]:
        total = total + x
    return total


def _shares(signed: list, merge: str) -> tuple[list, object]:
    """Per input its share of the relevance (they sum to one), and where no share is defined."""
    total = signed[0]
    for z in signed[1:]:
        total = total + z
    plain = [safe_divide(z, total) for z in signed]
    if merge == "contribution":
        return plain, ops.abs(total) <= ZERO_DENOMINATOR
    positive = [ops.relu(z) for z in signed]
    total_pos = positive[0]
    for z in positive[1:]:
        total_pos = total_pos + z
    has_pos = total_pos > ZERO_DENOMINATOR
    shares = [ops.where(has_pos, safe_divide(p, total_pos), s) for p, s in zip(positive, plain)]
    return shares, ops.logical_and(ops.logical_not(has_pos), ops.abs(total) <= ZERO_DENOMINATOR)


def merge_relevance(step, inputs: list, relevances: list, merge: str = "contribution"):
    """Relevance through a merge, per input.

    Concatenate hands each input its slice. Add gives input ``i`` a share of each output's
    relevance (Subtract is Add with the second input negated): ``merge="contribution"``,
    ``z_i / Σ_k z_k`` (LRP-0 on the sum); ``"positive"``, ``z_i⁺ / Σ_k z_k⁺`` (z⁺ on the sum), or
    the contribution share where no input is positive. The shares sum to one, so the merge
    conserves exactly whatever the signs, except at outputs with no share (inputs summing to
    zero): their relevance is the merge's sink.

    Returns
    -------
    per_input : list of lists of tensors
        For each input tensor, one relevance per target.
    sinks : list of tensors, shape (batch,)
        Relevance absorbed per target.
    """
    if step.kind == "concat":
        axis = step.conv_args["axis"]
        ends, end = [], 0
        for x in inputs[:-1]:
            end += int(x.shape[axis])
            ends.append(end)
        parts = [ops.split(r, ends, axis=axis) for r in relevances]
        zero = [ops.zeros_like(sum_per_input(r)) for r in relevances]
        return [[p[i] for p in parts] for i in range(len(inputs))], zero
    signed = list(inputs) if step.kind == "add" else [inputs[0], -inputs[1]]
    shares, undefined = _shares(signed, merge)
    per_input = [[share * r for r in relevances] for share in shares]
    sinks = [sum_per_input(ops.where(undefined, r, 0.0)) for r in relevances]
    return per_input, sinks


def dag_forward(dag: Dag, rules: dict | None, x) -> tuple[dict, list]:
    """Forward once, keeping every tensor (by number) and the linear steps' ``(z, extras)``
    caches (``rules`` None: the plain forward, no caches)."""
    tensors: dict = {0: x}
    caches = []
    for node in dag.nodes:
        step, inputs, cache = node.step, [tensors[t] for t in node.inputs], None
        if is_merge(step):
            out = merge_forward(step, inputs)
        elif step.kind == "linear" and rules is not None:
            cache = linear_forward(step, inputs[0], rules[step.name])
            z = cache[0] + step.bias if step.bias is not None else cache[0]
            out = ops.relu(z) if step.relu else z
        else:
            out = step.forward(inputs[0])
        tensors[node.output] = out
        caches.append(cache)
    return tensors, caches


def _add_to(pending: dict, tensor: int, relevances: list) -> None:
    held = pending.get(tensor)
    pending[tensor] = list(relevances) if held is None else [h + r for h, r in zip(held, relevances)]


def walk_back(dag: Dag, start: list, node_rule, frontier=None):
    """The reverse walk every graph method shares: from the output tensor to the input.

    Parameters
    ----------
    dag : Dag
    start : list of tensors
        What the output tensor holds (relevances, multipliers or gradients), one per target.
    node_rule : callable
        ``node_rule(index, node, held) -> (per_input, absorbed)``: what one node passes to each
        of its input tensors (a list per input, one tensor per target) and what it absorbed
        (one ``(batch,)`` tensor per target, or None).
    frontier : callable, optional
        ``frontier(tensor, value) -> (batch,)``: the quantity traced; after each node the trace
        holds its sum over every tensor still waiting to be passed on. None: no trace.

    A tensor read by several nodes (fan-out) receives the sum of what they pass; it is passed on
    once every reader has been processed, which the reversed topological order guarantees.

    Returns
    -------
    held : list of tensors
        What reached the input tensor, one per target.
    trace, sinks : lists of tensors, shape (T, batch)
        Per node, output to input (empty without ``frontier`` / absorbed values).
    """
    pending = {dag.output: list(start)}
    trace, sinks = [], []
    for index in reversed(range(len(dag.nodes))):
        node = dag.nodes[index]
        held = pending.pop(node.output)
        per_input, absorbed = node_rule(index, node, held)
        for tensor, value in zip(node.inputs, per_input):
            _add_to(pending, tensor, value)
        if frontier is not None:
            trace.append(ops.stack([sum(frontier(t, vs[k]) for t, vs in pending.items())
                                    for k in range(len(held))]))
        if absorbed is not None:
            sinks.append(ops.stack(absorbed))
    return pending[0], trace, sinks


def propagate_dag(dag: Dag, rules: dict, tensors: dict, caches: list, relevances: list,
                  merge: str = "contribution"):
    """Relevance from the output tensor down to the input, node by node (:func:`walk_back`).

    Parameters
    ----------
    dag, rules
        The graph and its rules by layer name.
    tensors, caches
        From :func:`dag_forward`.
    relevances : list of tensors
        Relevance of the output tensor, one per explained target.
    merge : {"contribution", "positive"}
        How Add/Subtract split relevance (:func:`merge_relevance`).

    Returns
    -------
    relevances : list of tensors
        Input relevance, one per target.
    trace : tensor, shape (len(nodes), T, batch)
        Per node, output to input, the relevance on the frontier after it.
    sinks : tensor, shape (len(nodes), T, batch)
        Per node, output to input, the relevance it absorbed.
    """
    def node_rule(index, node, held):
        step, inputs = node.step, [tensors[t] for t in node.inputs]
        if is_merge(step):
            return merge_relevance(step, inputs, held, merge)
        r_in, absorbed = propagate_step(step, inputs[0], held, rules.get(step.name), caches[index])
        return [r_in], absorbed

    relevances, trace, sinks = walk_back(dag, relevances, node_rule, lambda t, r: sum_per_input(r))
    return relevances, ops.stack(trace), ops.stack(sinks)


def node_function(step):
    """The forward of one node as a function of its input tensors (merges take several)."""
    if is_merge(step):
        return lambda *inputs: merge_forward(step, list(inputs))
    return step.forward


def backpropagate_dag(dag: Dag, tensors: dict, cotangents: list, guided: bool = False) -> list:
    """Vector-Jacobian products node by node, output to input (:func:`walk_back`);
    ``guided``: at every ReLU only positive gradients pass (guided backpropagation),
    ``g_in = 1[z > 0] · max(g_out, 0)``.

    Returns the gradient at the input tensor, one per cotangent.
    """
    def node_rule(index, node, grads):
        if guided and node.step.relu:
            grads = [ops.relu(g) for g in grads]
        _, vjp = value_and_vjp(node_function(node.step), [tensors[t] for t in node.inputs])
        per_grad = [vjp(g) for g in grads]
        return [[g[i] for g in per_grad] for i in range(len(node.inputs))], None

    return walk_back(dag, cotangents, node_rule)[0]


def forward_from(dag: Dag, tensors: dict, tensor: int, value):
    """The output tensor when ``tensor`` is replaced by ``value`` (the other tensors of
    :func:`dag_forward` held fixed): only the nodes after its producer are run again."""
    first = next(i for i, n in enumerate(dag.nodes) if n.output == tensor) + 1
    values = {**tensors, tensor: value}
    for node in dag.nodes[first:]:
        values[node.output] = node_function(node.step)(*[values[t] for t in node.inputs])
    return values[dag.output]


__all__ = ["merge_forward", "merge_relevance", "dag_forward", "walk_back", "propagate_dag",
           "node_function", "backpropagate_dag", "forward_from"]

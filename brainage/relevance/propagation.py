"""Layer-wise relevance propagation through a parsed chain of steps.

:func:`forward_with_caches` runs the network once, keeping every layer's input and the
rules' fused modified outputs; :func:`propagate_chain` then walks the chain from the output
to the input, one :func:`propagate_step` per layer, recording the relevance sum after each
(the conservation trace) and the relevance each layer absorbed (its sink: bias and ε shares,
dropped zero-denominator outputs). :func:`propagate` is the single-layer version for tests.

Several relevance tensors travel together (one per explained target), so a forward pass
is shared by every target.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from brainage.relevance._backend import value_and_vjp
from brainage.relevance._dag_steps import step_for_operation
from brainage.relevance._graph import Step, float_dtype
from brainage.relevance.rules import Rule, safe_divide, sum_per_input


def linear_forward(step: Step, a, rule: Rule | None):
    """The linear output ``z`` (no bias) and the rule's modified outputs, in one fused op."""
    extra = rule.forward_kernels(step) if rule is not None else []
    if not extra:
        return step.linear(a, step.kernel), []
    n = step.kernel.shape[-1]
    fused = step.linear(a, np.concatenate([step.kernel, *extra], axis=-1))
    parts = ops.split(fused, [n * (i + 1) for i in range(len(extra))], axis=-1)
    return parts[0], list(parts[1:])


def propagate_step(step: Step, a, relevances: list, rule: Rule | None = None, cache=None):
    """Relevance through one step of the chain (input ``a``, output relevance list).

    Dense/Conv use ``rule`` (``cache``: ``(z, extras)`` from :func:`linear_forward`, else
    computed here); average pooling uses LRP-0 (relevance in proportion to each input's
    contribution); max pooling is winner-take-all (everything to the window's first maximum,
    :func:`to_window_maximum`); BatchNormalization without a canonizer, Rescaling, ReLU,
    Dropout and identities pass relevance unchanged (seed 000 eq. 3.1: ``R_i = R_j``);
    Flatten/Reshape reshape it; UpSampling/Cropping/ZeroPadding (``index`` steps) send it back
    through their transpose (the relevance of padded zeros is their sink).

    Returns
    -------
    relevances : list of tensors
        Input relevance, one per output relevance tensor.
    sinks : list of tensors, shape (batch,)
        Relevance the step absorbed, per relevance tensor (zero for steps that pass it all on).
    """
    if step.kind == "linear":
        if rule is None:
            raise ValueError(f"layer {step.name!r}: no rule given")
        z, extras = cache if cache is not None else linear_forward(step, a, rule)
        return rule.relevance(step, a, relevances, z, extras)
    if step.kind == "avgpool":
        z, vjp = value_and_vjp(step.pre_activation, [a])
        shares = [safe_divide(r, z) for r in relevances]
        return ([a * vjp(s)[0] for s in shares],
                [sum_per_input(r - z * s) for r, s in zip(relevances, shares)])
    if step.kind == "index":  # copies summed back; relevance of padded zeros is the sink
        _, vjp = value_and_vjp(step.pre_activation, [a])
        ins = [vjp(r)[0] for r in relevances]
        return ins, [sum_per_input(r) - sum_per_input(i) for r, i in zip(relevances, ins)]
    none = [ops.zeros_like(sum_per_input(r)) for r in relevances]
    if step.kind == "maxpool":
        return [to_window_maximum(step, a, r) for r in relevances], none
    if step.kind == "reshape":
        return [ops.reshape(r, (-1,) + tuple(a.shape[1:])) for r in relevances], none
    return list(relevances), none


def to_window_maximum(step: Step, a, value):
    """``value`` (shaped like the pooling's output) handed to the first maximum of each window of
    ``a``. Ties matter here (a constant reference ties every window) and the backends' max-pool
    gradients treat them differently, so global and non-overlapping valid windows pick the first
    maximum explicitly; other windows fall back to the max-pool gradient."""
    spatial, channels = tuple(a.shape[1:-1]), a.shape[-1]
    layer = step.layer
    if not hasattr(layer, "pool_size"):  # global max pooling: one window per channel
        flat = ops.reshape(a, (-1, int(np.prod(spatial)), channels))
        first = ops.one_hot(ops.argmax(flat, axis=1), flat.shape[1], axis=1, dtype=a.dtype)
        return ops.reshape(first * ops.reshape(value, (-1, 1, channels)), ops.shape(a))
    pool, strides = tuple(layer.pool_size), tuple(layer.strides)
    if pool != strides or layer.padding != "valid":
        _, vjp = value_and_vjp(step.pre_activation, [a])
        return vjp(value)[0]
    out = [n // p for n, p in zip(spatial, pool)]
    nd = len(spatial)
    cropped = a[(slice(None),) + tuple(slice(0, o * p) for o, p in zip(out, pool))]
    split = [-1] + [d for o, p in zip(out, pool) for d in (o, p)] + [channels]
    order = [0] + [1 + 2 * k for k in range(nd)] + [2 * nd + 1] + [2 + 2 * k for k in range(nd)]
    windows = ops.transpose(ops.reshape(cropped, split), order)
    windows = ops.reshape(windows, tuple(windows.shape[: nd + 2]) + (-1,))
    first = ops.one_hot(ops.argmax(windows, axis=-1), windows.shape[-1], dtype=a.dtype)
    routed = ops.reshape(first * value[..., None], tuple(windows.shape[: nd + 2]) + pool)
    back = ops.reshape(ops.transpose(routed, list(np.argsort(order))),
                       (-1, *[o * p for o, p in zip(out, pool)], channels))
    return ops.pad(back, [(0, 0)] + [(0, n - o * p) for n, o, p in zip(spatial, out, pool)] + [(0, 0)])


def forward_with_caches(steps: list[Step], rules: dict, x) -> tuple[list, list]:
    """Forward once, keeping each layer's input and the rules' fused modified outputs.

    Returns
    -------
    activations : list of tensors
        ``x`` and every step's output (the last is the logits).
    caches : list
        Per step, ``(z, extras)`` from :func:`linear_forward` for linear steps, else None.
    """
    acts, caches = [x], []
    for step in steps:
        a, cache = acts[-1], None
        if step.kind == "linear":
            cache = linear_forward(step, a, rules[step.name])
            z = cache[0] + step.bias if step.bias is not None else cache[0]
            acts.append(ops.relu(z) if step.relu else z)
        else:
            acts.append(step.forward(a))
        caches.append(cache)
    return acts, caches


def propagate_chain(steps: list[Step], rules: dict, acts: list, caches: list, relevances: list):
    """Relevance from the output down to the input, layer by layer.

    Parameters
    ----------
    steps, rules
        The chain and its rules by layer name.
    acts, caches
        From :func:`forward_with_caches`.
    relevances : list of tensors
        Relevance of the logits, one per explained target.

    Returns
    -------
    relevances : list of tensors
        Input relevance, one per target.
    trace : tensor, shape (len(steps), T, batch)
        Per step, output to input, the relevance sum at that step's input.
    sinks : tensor, shape (len(steps), T, batch)
        Per step, output to input, the relevance that step absorbed.
    """
    trace, sinks = [], []
    for step, a, cache in zip(reversed(steps), reversed(acts[:-1]), reversed(caches)):
        relevances, absorbed = propagate_step(step, a, relevances, rules.get(step.name), cache)
        trace.append(ops.stack([sum_per_input(r) for r in relevances]))
        sinks.append(ops.stack(absorbed))
    return relevances, ops.stack(trace), ops.stack(sinks)


def propagate(layer, a, relevance, rule: Rule | None = None, nonnegative_input=None) -> np.ndarray:
    """Relevance through a single Keras layer, eagerly (for tests and inspection).

    Parameters
    ----------
    layer : keras.Layer
        A built single-input layer of a supported type (BatchNormalization: passthrough;
        UpSampling/Cropping/ZeroPadding, Conv*Transpose and Rescaling too).
    a : array-like
        The layer's input, with batch axis.
    relevance : array-like
        Relevance of the layer's output, with batch axis.
    rule : Rule, optional
        Needed for Dense/Conv.
    nonnegative_input : bool, optional
        Let z⁺/αβ assume ``a ≥ 0`` (default: ``a.min() >= 0``).
    """
    step = step_for_operation(layer, is_last=False)
    dtype = float_dtype(layer)
    a = ops.convert_to_tensor(np.asarray(a, dtype=dtype))
    if step is None:
        return np.asarray(relevance, dtype=dtype)
    step.nonnegative_input = (
        bool(np.min(ops.convert_to_numpy(a)) >= 0) if nonnegative_input is None else nonnegative_input
    )
    r = ops.convert_to_tensor(np.asarray(relevance, dtype=dtype))
    return ops.convert_to_numpy(propagate_step(step, a, [r], rule)[0][0])

"""Independent float64 references for whole graphs: a small functional Keras model as explicit
matrices on flat (channel-last, C-order) vectors, with DeepLIFT-Rescale and DTD rooted at a
reference computed by hand node by node. Nothing here runs the engine's math: layers become
matrices by index arithmetic (:mod:`.dense_reference`, :mod:`.dag_reference`); max pooling is a
list of windows, and each window's difference goes to its maximum at ``x`` where the output rose,
at the reference where it fell."""

import keras
import numpy as np

from .dag_reference import (
    concat_matrix,
    conv_transpose_matrix,
    copy_matrix,
    cropping_map,
    padding_map,
    sum_matrix,
    upsampling_map,
)
from .dense_reference import (
    _geometry,
    _shares,
    avg_pool_matrix,
    conv_matrix,
    global_avg_matrix,
)

L = keras.layers


def _windows(in_spatial, channels, window, strides):
    """Flat input indices of each valid max-pooling window, output order (voxel, channel)."""
    out, _ = _geometry(in_spatial, window, strides, "valid")
    rows = []
    for o in np.ndindex(*out):
        for c in range(channels):
            rows.append([np.ravel_multi_index(tuple(oi * s + ki for oi, s, ki in zip(o, strides, k)), in_spatial)
                         * channels + c for k in np.ndindex(*window)])
    return np.array(rows), out


def _linear(layer, shape):
    kernel, bias = (v.astype(np.float64) for v in layer.get_weights())
    relu = getattr(layer.activation, "__name__", "") == "relu"
    if isinstance(layer, L.Dense):
        return {"kind": "linear", "w": kernel, "b": bias, "relu": relu}, (kernel.shape[1],)
    if isinstance(layer, L.Conv3DTranspose):
        w, out = conv_transpose_matrix(kernel, shape[:-1], layer.strides, layer.padding)
        channels = kernel.shape[-2]
    else:
        w, out = conv_matrix(kernel, shape[:-1], layer.strides, layer.padding)
        channels = kernel.shape[-1]
    return {"kind": "linear", "w": w, "b": np.tile(bias, int(np.prod(out))), "relu": relu}, (*out, channels)


def _op(layer, shapes):
    """One layer as an op (kind, matrix or windows) and its output shape."""
    shape = shapes[0]
    spatial, channels = shape[:-1], shape[-1]
    if isinstance(layer, (L.Dense, L.Conv3D, L.Conv3DTranspose)):
        return _linear(layer, shape)
    copies = {L.UpSampling3D: lambda: upsampling_map(spatial, layer.size),
              L.Cropping3D: lambda: cropping_map(spatial, layer.cropping),
              L.ZeroPadding3D: lambda: padding_map(spatial, layer.padding)}
    for kind, geometry in copies.items():
        if isinstance(layer, kind):
            g = geometry()
            return {"kind": "copy", "w": copy_matrix(spatial, channels, g)}, (*g[0], channels)
    if isinstance(layer, L.AveragePooling3D):
        w, out = avg_pool_matrix(spatial, channels, layer.pool_size, layer.strides, layer.padding)
        return {"kind": "pool", "w": w}, (*out, channels)
    if isinstance(layer, L.GlobalAveragePooling3D):
        return {"kind": "pool", "w": global_avg_matrix(spatial, channels)}, (channels,)
    if isinstance(layer, L.MaxPooling3D):
        windows, out = _windows(spatial, channels, layer.pool_size, layer.strides)
        return {"kind": "max", "windows": windows}, (*out, channels)
    if isinstance(layer, L.GlobalMaxPooling3D):
        n = int(np.prod(spatial))
        return {"kind": "max", "windows": np.arange(n * channels).reshape(n, channels).T}, (channels,)
    if isinstance(layer, (L.Add, L.Subtract)):
        signs = [1.0] * len(shapes) if isinstance(layer, L.Add) else [1.0, -1.0]
        return {"kind": "merge", "w": sum_matrix(int(np.prod(shape)), signs)}, shape
    if isinstance(layer, L.Concatenate):
        w = concat_matrix(spatial, [s[-1] for s in shapes])
        return {"kind": "merge", "w": w}, (*spatial, sum(s[-1] for s in shapes))
    if isinstance(layer, L.Rescaling):
        return {"kind": "scale", "scale": float(layer.scale)}, shape
    if isinstance(layer, L.ReLU):
        return {"kind": "relu", "relu": True}, shape
    raise TypeError(f"dense_graph: no matrix for {type(layer).__name__}")


def graph_ops(model):
    """The model's layers as ops in construction (topological) order, each reading tensor ids."""
    ids, ops = {id(model.inputs[0]): 0}, []
    shapes = {0: tuple(model.input_shape[1:])}
    for layer in model.layers:
        if isinstance(layer, L.InputLayer):
            continue
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        tensors = [ids[id(t)] for t in inputs]
        op, shape = _op(layer, [shapes[t] for t in tensors])
        op = {"relu": False, **op, "name": layer.name, "inputs": tensors, "output": len(ids)}
        ids[id(layer.output)] = op["output"]
        shapes[op["output"]] = shape
        ops.append(op)
    return ops


def _pre(op, inputs):
    if op["kind"] in ("linear", "copy", "merge", "pool"):
        z = np.concatenate(inputs) @ op["w"]
        return z + op["b"] if "b" in op else z
    if op["kind"] == "max":
        return inputs[0][op["windows"]].max(axis=1)
    return inputs[0] * op["scale"] if op["kind"] == "scale" else inputs[0]


def forward(ops, x):
    """Every tensor (by id) and every op's pre-activation."""
    tensors, pres = {0: np.asarray(x, np.float64).reshape(-1)}, []
    for op in ops:
        z = _pre(op, [tensors[t] for t in op["inputs"]])
        pres.append(z)
        tensors[op["output"]] = np.maximum(z, 0.0) if op["relu"] else z
    return tensors, pres


def _split(op, tensors, values):
    sizes = np.cumsum([tensors[t].size for t in op["inputs"]])[:-1]
    return np.split(values, sizes)


def _routed(op, a, a_ref, dy, values):
    """Each window's value to its maximum at x (Δy ≥ 0) or at the reference (Δy < 0)."""
    out = np.zeros_like(a)
    for j, window in enumerate(op["windows"]):
        chosen = window[np.argmax(a[window] if dy[j] >= 0 else a_ref[window])]
        out[chosen] += values[j]
    return out


def _walk(ops, x, reference, top, node):
    """Reverse walk from the output tensor; ``node(op, index, held, run) -> per-input values``.
    Returns the value at the input and, per op (output to input), the frontier sum."""
    run = forward(ops, x), forward(ops, np.broadcast_to(reference, np.shape(x)))
    delta = {t: run[0][0][t] - run[1][0][t] for t in run[0][0]}
    pending, sums = {ops[-1]["output"]: np.asarray(top, np.float64).reshape(-1)}, {}
    for index in reversed(range(len(ops))):
        op = ops[index]
        for t, v in zip(op["inputs"], node(op, index, pending.pop(op["output"]), run, delta)):
            pending[t] = pending.get(t, 0.0) + v
        sums[op["name"]] = sum(node.frontier(t, v, delta) for t, v in pending.items())
    return pending[0], sums


def deeplift(ops, x, reference, cotangent):
    """DeepLIFT-Rescale by hand: input relevance ``m Δx`` and ``Σ m Δa`` after every op."""
    def node(op, index, m, run, delta):
        (acts, pres), (ref_acts, ref_pres) = run
        if op["relu"]:
            dz, da = pres[index] - ref_pres[index], delta[op["output"]]
            m = m * np.where(dz != 0, da / np.where(dz != 0, dz, 1.0), pres[index] > 0)
        if op["kind"] == "max":
            t = op["inputs"][0]
            dy = pres[index] - ref_pres[index]
            r = _routed(op, acts[t], ref_acts[t], dy, m * dy)
            return [np.where(delta[t] != 0, r / np.where(delta[t] != 0, delta[t], 1.0), 0.0)]
        if op["kind"] in ("linear", "copy", "merge", "pool"):
            return _split(op, acts, op["w"] @ m)
        return [m * op["scale"]] if op["kind"] == "scale" else [m]

    node.frontier = lambda t, m, delta: m @ delta[t]
    m, sums = _walk(ops, x, reference, cotangent, node)
    return m * (np.asarray(x, np.float64).reshape(-1) - np.broadcast_to(reference, np.shape(x)).reshape(-1)), sums


def dtd_reference(ops, x, reference, top):
    """DTD rooted at the reference by hand: ``q_ij = Δa_i w_ij`` where its sign is ``Δz_j``'s on
    linear maps and merges (Add, Subtract, Concatenate as matrices); copies by their matrix."""
    def node(op, index, r, run, delta):
        (acts, pres), (ref_acts, ref_pres) = run
        if op["kind"] == "max":
            t = op["inputs"][0]
            return [_routed(op, acts[t], ref_acts[t], pres[index] - ref_pres[index], r)]
        if op["kind"] in ("linear", "merge", "pool"):
            da = np.concatenate([delta[t] for t in op["inputs"]])
            contributions = da[:, None] * op["w"]
            sign = np.sign(contributions.sum(axis=0))
            q = np.where((np.sign(contributions) == sign) & (sign != 0), contributions, 0.0)
            return _split(op, acts, _shares(q, q.sum(axis=0)) @ r)
        return [op["w"] @ r] if op["kind"] == "copy" else [r]

    node.frontier = lambda t, r, delta: r.sum()
    return _walk(ops, x, reference, top, node)

"""Independent float64 references for whole chains: a small Keras chain as explicit matrices.

Nothing here runs the engine's math. :func:`chain_ops` turns a chain into float64 matrices by
index arithmetic (:mod:`.dense_reference`); the functions below propagate relevance through
them with explicit formulas, one input vector at a time, and return the input relevance and the
relevance sum after every op (output to input): layer-wise rules from a given top relevance,
DeepLIFT-Rescale multipliers, and the sign-matched rule of DTD rooted at a reference. Top
relevances (plain, contrasts, CLRP, SGLRP) are built by hand from the logits, each contrast as
its own small virtual layer (the engine's layout of virtual units is not reused).
"""

import keras
import numpy as np

from brainage.relevance import Epsilon, Gamma, WSquare, ZBox, ZPlus

from .dense_reference import _shares, avg_pool_matrix, conv_matrix, global_avg_matrix, rule_reference

_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_POOL = (keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D)
_GLOBAL = (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
           keras.layers.GlobalAveragePooling3D)


def _is_relu(layer):
    return getattr(getattr(layer, "activation", None), "__name__", "") == "relu"


def _linear_op(layer, shape):
    kernel, bias = (v.astype(np.float64) for v in layer.get_weights())
    if isinstance(layer, keras.layers.Dense):
        return {"name": layer.name, "kind": "linear", "w": kernel, "b": bias, "relu": _is_relu(layer)}, (kernel.shape[1],)
    w, out = conv_matrix(kernel, shape[:-1], layer.strides, layer.padding)
    op = {"name": layer.name, "kind": "linear", "w": w, "b": np.tile(bias, int(np.prod(out))), "relu": _is_relu(layer)}
    return op, (*out, kernel.shape[-1])


def _bn_op(layer, shape):
    gamma, beta, mean, var = (v.astype(np.float64) for v in layer.get_weights())
    scale = gamma / np.sqrt(var + layer.epsilon)
    n = int(np.prod(shape[:-1]))
    return {"name": layer.name, "kind": "bn", "scale": np.tile(scale, n), "shift": np.tile(beta - mean * scale, n),
            "relu": False}


def chain_ops(model, canonize=False):
    """The chain as float64 ops on flat (channel-last, C-order) vectors, input to output."""
    shape, ops = tuple(model.input_shape[1:]), []
    for layer in model.layers:
        if isinstance(layer, (keras.layers.InputLayer, keras.layers.Dropout)):
            continue
        if isinstance(layer, (keras.layers.Dense, *_CONV)):
            op, shape = _linear_op(layer, shape)
        elif isinstance(layer, _POOL):
            w, out = avg_pool_matrix(shape[:-1], shape[-1], layer.pool_size, layer.strides, layer.padding)
            op, shape = {"name": layer.name, "kind": "pool", "w": w, "relu": False}, (*out, shape[-1])
        elif isinstance(layer, _GLOBAL):
            op = {"name": layer.name, "kind": "pool", "w": global_avg_matrix(shape[:-1], shape[-1]), "relu": False}
            shape = (shape[-1],)
        elif isinstance(layer, keras.layers.BatchNormalization):
            op = _bn_op(layer, shape)
        elif isinstance(layer, keras.layers.ReLU) or _is_relu(layer):
            op = {"name": layer.name, "kind": "relu", "relu": True}
        elif isinstance(layer, (keras.layers.Flatten, keras.layers.Activation)):
            shape = (int(np.prod(shape)),) if isinstance(layer, keras.layers.Flatten) else shape
            continue
        else:
            raise TypeError(f"dense_chain: no matrix for {type(layer).__name__}")
        ops.append(op)
    return _fold_batch_norm(ops) if canonize else ops


def _fold_batch_norm(ops):
    folded = []
    for op in ops:
        if op["kind"] == "bn":
            prev = dict(folded[-1])
            prev["w"], prev["b"] = prev["w"] * op["scale"], prev["b"] * op["scale"] + op["shift"]
            folded[-1] = prev
            continue
        folded.append(op)
    return folded


def forward(ops, x):
    """Every op's input (and the final output) and every op's pre-activation."""
    acts, pres = [np.asarray(x, np.float64)], []
    for op in ops:
        a = acts[-1]
        z = {"linear": lambda: a @ op["w"] + op["b"], "pool": lambda: a @ op["w"],
             "bn": lambda: a * op["scale"] + op["shift"], "relu": lambda: a}[op["kind"]]()
        pres.append(z)
        acts.append(np.maximum(z, 0.0) if op["relu"] else z)
    return acts, pres


def with_virtual(ops, virtual):
    """The chain with a virtual layer (n_classes × units) merged into its last linear op."""
    if virtual is None:
        return ops
    last = max(i for i, op in enumerate(ops) if op["kind"] == "linear")
    n, units = virtual.shape
    positions = ops[last]["w"].shape[1] // n  # a conv head: V at every position
    per_position = np.kron(np.eye(positions), virtual)
    merged = dict(ops[last], w=ops[last]["w"] @ per_position, b=ops[last]["b"] @ per_position)
    # Pooling after the head acts on each channel alike: the same matrix over ``units`` channels.
    tail = [dict(op, w=np.kron(op["w"][::n, ::n], np.eye(units))) for op in ops[last + 1:]]
    return ops[:last] + [merged] + tail


def reference_rules(analyzer):
    """The analyzer's rule assignment as ``name -> (rule name, params)`` for :func:`lrp`."""
    out = {}
    for name, rule in analyzer.rules.items():
        if isinstance(rule, ZPlus):
            out[name] = ("zplus", {})
        elif isinstance(rule, ZBox):
            out[name] = ("zbox", {"low": rule.low, "high": rule.high})
        elif isinstance(rule, WSquare):
            out[name] = ("w2", {})
        elif isinstance(rule, Epsilon):
            out[name] = ("epsilon" if rule.epsilon else "lrp0", {"epsilon": rule.epsilon, "use_bias": rule.use_bias})
        elif isinstance(rule, Gamma):
            out[name] = ("gamma", {"gamma": rule.gamma, "use_bias": rule.use_bias})
        else:
            raise TypeError(f"dense_chain: no reference for {rule!r}")
    return out


def _apply_rule(op, a, r, rule):
    name, params = rule
    params = dict(params)
    bias = op["b"] if params.pop("use_bias", True) else np.zeros_like(op["b"])
    n_in = op["w"].shape[0]
    if name == "zbox":
        params = {k: np.broadcast_to(np.asarray(v, np.float64).reshape(-1) if np.ndim(v) else v, (n_in,))
                  for k, v in params.items()}
    return rule_reference(name, op["w"], bias, a, r, **params)


def lrp(ops, x, top, rules, virtual=None):
    """Layer-wise relevance from ``top`` (relevance of the top units) for one input vector;
    also the relevance sum after each op, by op (layer) name."""
    ops = with_virtual(ops, virtual)
    acts, _ = forward(ops, x)
    r, sums = np.asarray(top, np.float64), {}
    for op, a in zip(reversed(ops), reversed(acts[:-1])):
        if op["kind"] == "linear":
            r = _apply_rule(op, a, r, rules[op["name"]])
        elif op["kind"] == "pool":
            r = rule_reference("lrp0", op["w"], 0.0, a, r)
        sums[op["name"]] = r.sum()
    return r, sums


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def contrast_top(z, c, contrast=None):
    """``(value, virtual, top relevance)`` of a target on logits ``z``, built by hand."""
    n = len(z)
    eye = np.eye(n)
    others = [k for k in range(n) if k != c]
    if contrast is None:
        return z[c], None, eye[c] * z[c]
    if contrast == "logodds":
        p = softmax(z)
        value = np.log(p[c]) - np.log1p(-p[c])
        virtual = np.stack([eye[c] - eye[k] for k in others], axis=1)
        return value, virtual, p[others] / p[others].sum() * value
    if contrast == "mean":
        column = eye[c] - eye[others].mean(axis=0)
    else:
        k = others[int(np.argmax(z[others]))] if contrast == "runnerup" else int(contrast)
        column = eye[c] - eye[k]
    return column @ z, column[:, None], np.array([column @ z])


def clrp(ops, x, rules, c, dual="others", clip=True):
    """CLRP by two explicit backward passes: ``R − R_dual`` (clipped at 0)."""
    z = forward(ops, x)[0][-1]
    n = len(z)
    explained, _ = lrp(ops, x, np.eye(n)[c] * z[c], rules)
    if dual == "others":
        r_dual, _ = lrp(ops, x, (1.0 - np.eye(n)[c]) * z[c] / (n - 1), rules)
    else:
        r_dual, _ = lrp(ops, x, np.array([z[c]]), rules, virtual=-np.eye(n)[c][:, None])
    out = explained - r_dual
    return np.maximum(out, 0.0) if clip else out


def sglrp(ops, x, rules, c):
    """SGLRP by two explicit backward passes: the class with ``p_c (1 − p_c)``, minus its dual
    with ``p_c p_n`` on every other class."""
    p = softmax(forward(ops, x)[0][-1])
    target = np.eye(len(p))[c] * p[c] * (1.0 - p[c])
    dual = (1.0 - np.eye(len(p))[c]) * p[c] * p
    return lrp(ops, x, target, rules)[0] - lrp(ops, x, dual, rules)[0]


def deeplift(ops, x, reference, cotangent):
    """DeepLIFT-Rescale multipliers by hand: input relevance and ``Σ m Δa`` per op."""
    acts, pres = forward(ops, x)
    ref_acts, ref_pres = forward(ops, reference)
    m, sums = np.asarray(cotangent, np.float64), {}
    for i in reversed(range(len(ops))):
        op = ops[i]
        if op["relu"]:
            dz, da = pres[i] - ref_pres[i], acts[i + 1] - ref_acts[i + 1]
            m = m * np.where(dz != 0, da / np.where(dz != 0, dz, 1.0), pres[i] > 0)
        if op["kind"] in ("linear", "pool"):
            m = op["w"] @ m
        elif op["kind"] == "bn":
            m = op["scale"] * m
        sums[op["name"]] = m @ (acts[i] - ref_acts[i])
    return m * (acts[0] - ref_acts[0]), sums


def dtd_reference(ops, x, reference, top, virtual=None):
    """DTD rooted at the reference by hand: ``q_ij = Δa_i w_ij`` where its sign is ``Δz_j``'s."""
    ops = with_virtual(ops, virtual)
    acts, _ = forward(ops, x)
    ref_acts, _ = forward(ops, reference)
    r, sums = np.asarray(top, np.float64), {}
    for i in reversed(range(len(ops))):
        op = ops[i]
        if op["kind"] in ("linear", "pool"):
            contributions = (acts[i] - ref_acts[i])[:, None] * op["w"]
            sign = np.sign(contributions.sum(axis=0))
            q = np.where((np.sign(contributions) == sign) & (sign != 0), contributions, 0.0)
            r = _shares(q, q.sum(axis=0)) @ r
        sums[op["name"]] = r.sum()
    return r, sums

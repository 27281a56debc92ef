"""Analyzers: explain a Keras model's logit as a relevance map over its input.

:class:`Analyzer` holds what every method shares (parsing the chain, target selection,
compilation, the :class:`Explanation` with its diagnostics); :class:`RelevanceAnalyzer`
runs layer-wise relevance propagation with a :class:`~brainage.relevance.Composite`
(deep Taylor decomposition and the LRP presets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from keras import ops

from brainage.relevance._backend import backend_name, compile_function, value_and_vjp
from brainage.relevance._graph import Step, build_steps
from brainage.relevance.composites import Composite, get_composite
from brainage.relevance.rules import Rule, safe_divide


@dataclass
class Explanation:
    """Relevance maps and their diagnostics for a batch.

    With ``target="all"`` every array gains a leading class axis (``n_classes``).

    Attributes
    ----------
    maps : numpy.ndarray, float32
        Relevance per input element, shaped like ``x`` (``(n_classes, *x.shape)`` for "all").
    outputs : numpy.ndarray
        The explained logit (pre-softmax) per input.
    target : numpy.ndarray of int
        Explained class per input.
    relevance_sum : numpy.ndarray
        Sum of each map.
    rel_error : numpy.ndarray
        ``|relevance_sum − output| / |output|`` (NaN where the output is 0).
    negative_share : numpy.ndarray
        ``Σ|R⁻| / Σ|R|`` per map (0 for an all-zero map).
    trace : dict of str to numpy.ndarray
        Layer-wise relevance methods only: for each layer, output to input, the relevance sum
        at that layer's input after its rule was applied. The chain starts from ``outputs``;
        a step between consecutive entries shows where relevance leaks.
    method : str
    extras : dict
        Method-specific arrays (Grad-CAM: ``cam``, the map at the layer's resolution).
    """

    maps: np.ndarray
    outputs: np.ndarray
    target: np.ndarray
    relevance_sum: np.ndarray
    rel_error: np.ndarray
    negative_share: np.ndarray
    trace: dict = field(default_factory=dict)
    method: str = ""
    extras: dict = field(default_factory=dict)

    @property
    def max_rel_error(self) -> float:
        """Largest conservation error over the batch (and classes)."""
        return float(np.nanmax(self.rel_error))

    def trace_rel_error(self) -> dict:
        """Per layer, ``|trace − output| / |output|``: conservation checked layer by layer."""
        out = np.abs(self.outputs.astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            return {k: np.abs(v - self.outputs) / out for k, v in self.trace.items()}


def _diagnostics(maps: np.ndarray, outputs: np.ndarray, lead_axes: int):
    axes = tuple(range(lead_axes, maps.ndim))
    m = maps.astype(np.float64)
    total = m.sum(axis=axes)
    absolute = np.abs(m).sum(axis=axes)
    negative = np.abs(np.minimum(m, 0.0)).sum(axis=axes)
    out = outputs.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_error = np.where(out != 0, np.abs(total - out) / np.abs(out), np.nan)
        negative_share = np.where(absolute > 0, negative / absolute, 0.0)
    return total, rel_error, negative_share


class Analyzer:
    """Common machinery of every explanation method.

    Parameters
    ----------
    model : keras.Model
        Functional or Sequential single chain ending in a ``(batch, n_classes)`` logit
        layer (a final softmax is skipped). Weights are snapshotted now: build a new
        analyzer after further training.
    bn_mode : {"passthrough", "canonize"}
        BatchNormalization handling, see :class:`RelevanceAnalyzer`.
    compile : bool
        Compile the explanation (``jax.jit`` / ``tf.function``). False runs eagerly.
    jit_compile : bool
        TensorFlow only: let ``tf.function`` use XLA.
    """

    method = "analyzer"

    def __init__(self, model, *, bn_mode="passthrough", compile=True, jit_compile=False):
        backend_name()
        self.model = model
        self.bn_mode = bn_mode
        self.steps: list[Step] = build_steps(model, bn_mode)
        output_shape = tuple(model.output_shape)
        if len(output_shape) != 2:
            raise ValueError(
                f"model {model.name!r}: output shape {output_shape} is not (batch, n_classes)"
            )
        self.n_classes = int(output_shape[-1])
        self.input_shape = tuple(model.input_shape[1:])
        self.compile = compile
        self.jit_compile = jit_compile
        self._graph_fn = compile_function(self._graph, compile, jit_compile)

    # ------------------------------------------------------------------ public
    def explain(self, x, target="predicted", labels=None) -> Explanation:
        """Explain a batch.

        Parameters
        ----------
        x : array-like, shape (batch, *model input shape)
        target : "predicted", "true", int or "all"
            Which logit to explain: the arg-max class, the label (needs ``labels``), a fixed
            class, or every class in turn (maps get a leading class axis).
        labels : array-like of int, shape (batch,), optional
            True classes, for ``target="true"``.
        """
        x = self._check_input(x)
        targets = self._target_indices(target, labels, x.shape[0])
        result = self._run(x, targets)
        return self._explanation(result, all_classes=isinstance(target, str) and target == "all")

    def __repr__(self):
        return f"{type(self).__name__}(method={self.method!r}, bn_mode={self.bn_mode!r})"

    # ---------------------------------------------------------------- internals
    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        expected = self.input_shape
        shown = "(batch, " + ", ".join("?" if d is None else str(d) for d in expected) + ")"
        if x.ndim != len(expected) + 1 or any(
            d is not None and d != s for d, s in zip(expected, x.shape[1:])
        ):
            hint = "; add a batch axis for one input: x[None]" if x.shape == expected else ""
            raise ValueError(
                f"{self.method}: input of shape {x.shape} does not match the model input "
                f"{shown}{hint}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"{self.method}: empty batch")
        return x

    def _target_indices(self, target, labels, batch) -> np.ndarray:
        """Targets as a (T, batch) int32 array; -1 means "the predicted class"."""
        if isinstance(target, str):
            if target == "predicted":
                return np.full((1, batch), -1, dtype=np.int32)
            if target == "all":
                return np.repeat(np.arange(self.n_classes, dtype=np.int32)[:, None], batch, axis=1)
            if target == "true":
                if labels is None:
                    raise ValueError(f"{self.method}: target='true' needs labels")
                labels = np.asarray(labels).astype(np.int64).reshape(-1)
                if labels.shape != (batch,):
                    raise ValueError(
                        f"{self.method}: {labels.shape[0]} labels for a batch of {batch}"
                    )
                return self._checked_classes(labels)[None, :]
            raise ValueError(
                f"{self.method}: target must be 'predicted', 'true', 'all' or a class index, "
                f"got {target!r}"
            )
        if isinstance(target, (bool, np.bool_)):  # True == 1: never read a flag as class 1
            raise ValueError(f"{self.method}: target {target!r} is a boolean; use 'true' for the "
                             "true class or an int class index")
        if isinstance(target, (int, np.integer)):
            return self._checked_classes(np.full((1, batch), int(target)))
        raise ValueError(f"{self.method}: target must be a string or an int, got {target!r}")

    def _checked_classes(self, classes) -> np.ndarray:
        classes = np.asarray(classes)
        bad = (classes < 0) | (classes >= self.n_classes)
        if bad.any():
            raise ValueError(
                f"{self.method}: class {int(classes[bad].flat[0])} out of range for a model "
                f"with {self.n_classes} outputs"
            )
        return classes.astype(np.int32)

    def _forward(self, x) -> list:
        acts = [x]
        for step in self.steps:
            acts.append(step.forward(acts[-1]))
        return acts

    def _select(self, logits, targets):
        predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
        chosen = ops.where(targets < 0, predicted[None, :], targets)
        onehot = ops.one_hot(chosen, self.n_classes, dtype=logits.dtype)
        outputs = ops.sum(onehot * logits[None], axis=-1)
        return chosen, onehot, outputs

    def _graph(self, x, targets):  # pragma: no cover - interface
        """Compiled core: returns (maps (T, B, ...), outputs (T, B), target (T, B)[, trace])."""
        raise NotImplementedError

    def _run(self, x, targets) -> dict:
        result = self._graph_fn(x, targets)
        names = ["maps", "outputs", "target", "trace"]
        return {k: ops.convert_to_numpy(v) for k, v in zip(names, result)}

    def _trace_names(self) -> list[str]:
        return []

    def _explanation(self, result: dict, all_classes: bool) -> Explanation:
        maps = result["maps"].astype(np.float32)
        outputs = result["outputs"]
        target = result["target"].astype(np.int64)
        trace = {}
        if "trace" in result:
            trace = dict(zip(self._trace_names(), result["trace"]))
        extras = {k: v for k, v in result.items() if k not in ("maps", "outputs", "target", "trace")}
        if not all_classes:
            maps, outputs, target = maps[0], outputs[0], target[0]
            trace = {k: v[0] for k, v in trace.items()}
            extras = {k: v[0] for k, v in extras.items()}
        total, rel_error, negative_share = _diagnostics(maps, outputs, 2 if all_classes else 1)
        return Explanation(
            maps=maps,
            outputs=outputs,
            target=target,
            relevance_sum=total,
            rel_error=rel_error,
            negative_share=negative_share,
            trace=trace,
            method=self.method,
            extras=extras,
        )


def _sum_per_input(r):
    return ops.sum(r, axis=tuple(range(1, len(r.shape))))


def linear_forward(step: Step, a, rule: Rule | None):
    """The linear output ``z`` (no bias) and the rule's modified outputs, in one fused op."""
    extra = rule.forward_kernels(step) if rule is not None else []
    if not extra:
        return step.linear(a, step.kernel), []
    n = step.kernel.shape[-1]
    fused = step.linear(a, np.concatenate([step.kernel, *extra], axis=-1))
    parts = ops.split(fused, [n * (i + 1) for i in range(len(extra))], axis=-1)
    return parts[0], list(parts[1:])


def propagate_step(step: Step, a, relevances: list, rule: Rule | None = None, cache=None) -> list:
    """Relevance through one step of the chain (input ``a``, output relevance list).

    Dense/Conv use ``rule`` (``cache``: ``(z, extras)`` from :func:`linear_forward`, else
    computed here); average pooling uses LRP-0 (relevance in proportion to each input's
    contribution); max pooling is winner-take-all (everything to the window's maximum,
    via the max-pool gradient); BatchNormalization in passthrough mode, ReLU, Dropout and
    identities pass relevance unchanged (seed 000 eq. 3.1: ``R_i = R_j``); Flatten/Reshape
    reshape it.
    """
    if step.kind == "linear":
        if rule is None:
            raise ValueError(f"layer {step.name!r}: no rule given")
        z, extras = cache if cache is not None else linear_forward(step, a, rule)
        return rule.relevance(step, a, relevances, z, extras)
    if step.kind == "avgpool":
        z, vjp = value_and_vjp(step.pre_activation, [a])
        return [a * vjp(safe_divide(r, z))[0] for r in relevances]
    if step.kind == "maxpool":
        _, vjp = value_and_vjp(step.pre_activation, [a])
        return [vjp(r)[0] for r in relevances]
    if step.kind == "reshape":
        return [ops.reshape(r, (-1,) + tuple(a.shape[1:])) for r in relevances]
    return list(relevances)


def propagate(layer, a, relevance, rule: Rule | None = None, nonnegative_input=None) -> np.ndarray:
    """Relevance through a single Keras layer, eagerly (for tests and inspection).

    Parameters
    ----------
    layer : keras.Layer
        A built layer of a supported type (BatchNormalization: passthrough).
    a : array-like
        The layer's input, with batch axis.
    relevance : array-like
        Relevance of the layer's output, with batch axis.
    rule : Rule, optional
        Needed for Dense/Conv.
    nonnegative_input : bool, optional
        Let z⁺/αβ assume ``a ≥ 0`` (default: ``a.min() >= 0``).
    """
    from brainage.relevance._graph import _step_from_layer

    step = _step_from_layer(layer, is_last=False)
    a = ops.convert_to_tensor(np.asarray(a, dtype=np.float32))
    if step is None:
        return np.asarray(relevance, dtype=np.float32)
    step.nonnegative_input = (
        bool(np.min(ops.convert_to_numpy(a)) >= 0) if nonnegative_input is None else nonnegative_input
    )
    r = ops.convert_to_tensor(np.asarray(relevance, dtype=np.float32))
    return ops.convert_to_numpy(propagate_step(step, a, [r], rule)[0])


class RelevanceAnalyzer(Analyzer):
    """Layer-wise relevance propagation: deep Taylor decomposition and LRP composites.

    Relevance starts at the target's logit (pre-softmax) and is passed down layer by layer;
    the cost is about one forward and one backward pass (see :mod:`brainage.relevance.rules`).

    Parameters
    ----------
    model : keras.Model
    composite : Composite or str
        A :class:`Composite`, or a preset name: ``"dtd"`` (z⁺ hidden, zᴮ input),
        ``"dtd_w2"``, ``"lrp_composite"``, ``"epsilon_plus"``.
    bn_mode : {"passthrough", "canonize"}
        ``passthrough``: relevance crosses BatchNormalization unchanged (seed 000 eq. 3.1).
        ``canonize``: each BatchNormalization is folded into the Dense/Conv right before it
        (``W' = W·γ/σ``, ``b' = (b − μ)γ/σ + β``) so the rule sees the true affine map.
    compile, jit_compile : bool
        See :class:`Analyzer`.
    **composite_params
        Passed to the preset (``low``, ``high``, ``epsilon``, ``gamma``).
    """

    def __init__(
        self,
        model,
        composite: Composite | str = "dtd",
        *,
        bn_mode="passthrough",
        compile=True,
        jit_compile=False,
        **composite_params,
    ):
        if isinstance(composite, str):
            composite = get_composite(composite, **composite_params)
        elif composite_params:
            raise TypeError(
                f"parameters {sorted(composite_params)} only apply to preset names, not to a "
                "Composite object"
            )
        self.composite = composite
        self.method = composite.name
        super().__init__(model, bn_mode=bn_mode, compile=compile, jit_compile=jit_compile)
        self.rules = composite.assign(self.steps)

    def __repr__(self):
        return f"RelevanceAnalyzer(composite={self.composite!r}, bn_mode={self.bn_mode!r})"

    def _trace_names(self):
        return [s.name for s in reversed(self.steps)]

    def _graph(self, x, targets):
        # Forward once, keeping each layer's input and the rules' fused modified outputs.
        acts, caches = [x], []
        for step in self.steps:
            a, cache = acts[-1], None
            if step.kind == "linear":
                cache = linear_forward(step, a, self.rules[step.name])
                z = cache[0] + step.bias if step.bias is not None else cache[0]
                acts.append(ops.relu(z) if step.relu else z)
            else:
                acts.append(step.forward(a))
            caches.append(cache)
        logits = acts[-1]
        chosen, onehot, outputs = self._select(logits, targets)
        relevances = [onehot[i] * logits for i in range(targets.shape[0])]
        trace = []
        for step, a, cache in zip(reversed(self.steps), reversed(acts[:-1]), reversed(caches)):
            relevances = propagate_step(step, a, relevances, self.rules.get(step.name), cache)
            trace.append(ops.stack([_sum_per_input(r) for r in relevances]))
        return ops.stack(relevances), outputs, chosen, ops.stack(trace)


def compare_bn_modes(model, x, target="predicted", labels=None, composite="dtd", **params) -> dict:
    """How much BatchNormalization handling changes the maps: passthrough vs canonize.

    Returns
    -------
    dict
        ``correlation`` (Pearson, per input), ``rel_l1`` (``Σ|R_pass − R_canon| / Σ|R_canon|``
        per input), their means ``mean_correlation``/``mean_rel_l1``, and the conservation
        errors ``rel_error_passthrough``/``rel_error_canonize``.
    """
    passthrough = RelevanceAnalyzer(model, composite, bn_mode="passthrough", **params)
    canonize = RelevanceAnalyzer(model, composite, bn_mode="canonize", **params)
    ep = passthrough.explain(x, target=target, labels=labels)
    ec = canonize.explain(x, target=target, labels=labels)
    a = ep.maps.reshape(ep.maps.shape[0], -1).astype(np.float64)
    b = ec.maps.reshape(ec.maps.shape[0], -1).astype(np.float64)
    ac, bc = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (ac * bc).sum(1) / np.sqrt((ac**2).sum(1) * (bc**2).sum(1))
        rel_l1 = np.abs(a - b).sum(1) / np.abs(b).sum(1)
    return {
        "correlation": corr,
        "rel_l1": rel_l1,
        "mean_correlation": float(np.nanmean(corr)),
        "mean_rel_l1": float(np.nanmean(rel_l1)),
        "rel_error_passthrough": ep.rel_error,
        "rel_error_canonize": ec.rel_error,
    }

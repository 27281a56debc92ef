"""Gradient-based explanations with the same interface as the relevance analyzers.

Gradient, gradient × input, integrated gradients, guided backpropagation (seed 003) and
Grad-CAM at any named spatial layer (seed 002). All explain branching graphs too, and gradient,
gradient × input and guided backpropagation also regions of per-voxel outputs. Targets,
batching and the
:class:`~brainage.relevance.Explanation` diagnostics are shared with
:class:`~brainage.relevance.RelevanceAnalyzer`; there is no conservation trace. A contrast
target differentiates the contrast (``z_c − z_k``, the log-odds, ...): the backward pass starts
from its gradient with respect to the logits.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from brainage.relevance._backend import value_and_vjp
from brainage.relevance.analyzer import Analyzer
from brainage.relevance.dag_propagation import backpropagate_dag, dag_forward, forward_from
from brainage.relevance.heads import region_head
from brainage.relevance.registry import register_method


@register_method("gradient", order=4)
class GradientAnalyzer(Analyzer):
    """Gradient of the target logit with respect to the input (``times_input``: × input).

    Parameters
    ----------
    model : keras.Model
    times_input : bool
        Return ``x ⊙ ∂f/∂x`` (gradient × input) instead of the gradient.
    compile, jit_compile, contrast
        See :class:`~brainage.relevance.Analyzer`.
    """

    def __init__(self, model, *, times_input=False, compile=True, jit_compile=False, contrast=None):
        self.times_input = times_input
        self.method = "gradient_x_input" if times_input else "gradient"
        super().__init__(model, compile=compile, jit_compile=jit_compile, contrast=contrast)

    supports_dag = True
    supports_regions = True

    def _logits(self, x):
        if self.dag is not None:
            return dag_forward(self.dag, None, x)[0][self.dag.output]
        for step in self.steps:
            x = step.forward(x)
        return x

    def _graph(self, x, classes, others, mode):
        logits, vjp = value_and_vjp(self._logits, [x])
        return self._result(x, self._select(logits, classes, others, mode), vjp, classes.shape[0])

    def _region_graph(self, x, classes, mask):
        outputs, vjp = value_and_vjp(self._logits, [x])
        return self._result(x, region_head(outputs, classes, mask), vjp, classes.shape[0])

    def _result(self, x, head, vjp, n_targets):
        maps = ops.stack([vjp(head.cotangent[i])[0] for i in range(n_targets)])
        if self.times_input:
            maps = maps * x[None]
        return {"maps": maps, "outputs": head.outputs, "target": head.chosen, "other": head.other}


@register_method("gradient_x_input", order=5)
def _gradient_x_input(model, **params) -> GradientAnalyzer:
    """Gradient × input (parameters: :class:`GradientAnalyzer`'s but ``times_input``)."""
    return GradientAnalyzer(model, times_input=True, **params)


@register_method("integrated_gradients", order=8)
class IntegratedGradientsAnalyzer(GradientAnalyzer):
    """Integrated gradients: ``(x − x₀) ⊙ mean_k ∂f/∂x(x₀ + α_k (x − x₀))``.

    Midpoint Riemann sum with ``α_k = (k + ½)/steps``; the target is chosen at ``x``.
    By completeness the map sums to about ``f(x) − f(x₀)`` (``rel_error`` compares with
    ``f(x)``, so it shows ``|f(x₀)| / |f(x)|`` plus the quadrature error).

    Parameters
    ----------
    model : keras.Model
    steps : int
        Number of interpolation points (one compiled gradient call each).
    baseline : float or array-like
        ``x₀``, broadcastable to one input (default zeros).
    """

    supports_regions = True  # a region of a per-voxel output: its summed logits integrated

    def __init__(self, model, *, steps=32, baseline=0.0, compile=True, jit_compile=False,
                 contrast=None):
        if int(steps) < 1:
            raise ValueError(f"integrated_gradients: steps must be ≥ 1, got {steps}")
        self.n_steps = int(steps)
        self.baseline = np.asarray(baseline, dtype=np.float64)  # in the input's type when used
        super().__init__(model, times_input=False, compile=compile, jit_compile=jit_compile,
                         contrast=contrast)
        self.method = "integrated_gradients"

    def _run(self, x, classes, others, mode):
        graph = self._compiled(mode)
        at_x = {k: ops.convert_to_numpy(v) for k, v in graph(x, classes, others).items()}
        chosen, other = at_x["target"].astype(np.int32), at_x["other"].astype(np.int32)
        return self._integrated(x, at_x, lambda v: graph(v, chosen, other))

    def _explain_region(self, x, target, contrast, output_mask):
        x, spec, classes, mask = self._region_inputs(x, target, contrast, output_mask)
        graph = self._compiled_region()
        at_x = {k: ops.convert_to_numpy(v) for k, v in graph(x, classes, mask).items()}
        return self._assemble(self._integrated(x, at_x, lambda v: graph(v, classes, mask)), spec)

    def _integrated(self, x, at_x, gradient):
        """``at_x`` with the maps ``(x − x₀) ⊙ mean_k gradient(x₀ + α_k (x − x₀))``."""
        baseline = np.broadcast_to(self.baseline, x.shape[1:]).astype(x.dtype)[None]
        total = None
        delta = x - baseline
        for k in range(self.n_steps):
            alpha = x.dtype.type((k + 0.5) / self.n_steps)
            grads = ops.convert_to_numpy(gradient(baseline + alpha * delta)["maps"])
            total = grads if total is None else total + grads
        return {**at_x, "maps": delta[None] * (total / self.n_steps)}


@register_method("guided_backprop", order=6)
class GuidedBackpropAnalyzer(GradientAnalyzer):
    """Guided backpropagation (Springenberg et al., seed 003).

    The gradient is propagated layer by layer, and at every ReLU (fused or a layer) only
    positive gradients pass where the forward activation was positive:
    ``g_in = 1[z > 0] · max(g_out, 0)``.
    """

    def __init__(self, model, *, compile=True, jit_compile=False, contrast=None):
        super().__init__(model, times_input=False, compile=compile, jit_compile=jit_compile,
                         contrast=contrast)
        self.method = "guided_backprop"

    def _graph(self, x, classes, others, mode):
        if self.dag is not None:
            tensors, _ = dag_forward(self.dag, None, x)
            head = self._select(tensors[self.dag.output], classes, others, mode)
            return self._guided_dag(tensors, head, classes.shape[0])
        acts = self._forward(x)
        head = self._select(acts[-1], classes, others, mode)
        grads = [head.cotangent[i] for i in range(classes.shape[0])]
        for step, a in zip(reversed(self.steps), reversed(acts[:-1])):
            if step.kind == "reshape":
                grads = [ops.reshape(g, (-1,) + tuple(a.shape[1:])) for g in grads]
                continue
            if step.relu:
                grads = [ops.relu(g) for g in grads]
            _, vjp = value_and_vjp(step.forward, [a])
            grads = [vjp(g)[0] for g in grads]
        return {"maps": ops.stack(grads), "outputs": head.outputs, "target": head.chosen,
                "other": head.other}

    def _region_graph(self, x, classes, mask):
        tensors, _ = dag_forward(self.dag, None, x)
        head = region_head(tensors[self.dag.output], classes, mask)
        return self._guided_dag(tensors, head, classes.shape[0])

    def _guided_dag(self, tensors, head, n_targets):
        cotangents = [head.cotangent[i] for i in range(n_targets)]
        grads = backpropagate_dag(self.dag, tensors, cotangents, guided=True)
        return {"maps": ops.stack(grads), "outputs": head.outputs, "target": head.chosen,
                "other": head.other}


def _axis_interpolation(n_out: int, n_cam: int, offset: float, scale: float) -> np.ndarray:
    """Matrix (n_out, n_cam) of 1-D linear interpolation at cam index ``(p − offset)/scale``."""
    pos = np.clip((np.arange(n_out) - offset) / scale, 0.0, n_cam - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_cam - 1)
    frac = pos - lo
    m = np.zeros((n_out, n_cam))
    m[np.arange(n_out), lo] += 1.0 - frac
    m[np.arange(n_out), hi] += frac
    return m


@register_method("gradcam", order=7)
class GradCAMAnalyzer(Analyzer):
    """Grad-CAM (Selvaraju et al.; seed 002) at any named spatial layer, in 1-D/2-D/3-D.

    ``cam = ReLU(Σ_k α_k A_k)`` with ``α_k`` the spatial mean of ``∂f/∂A_k`` at the layer's
    output ``A``. The cam is resampled onto the input grid by aligning every cam voxel with
    the centre of its receptive field (valid-padding convolutions shrink the grid, so a
    plain zoom would shift it): along each axis the cam index of input voxel ``p`` is
    ``(p − offset) / scale``, from the layers' kernel sizes, strides and padding; values are
    linearly interpolated and held constant beyond the outermost centres. The low-resolution
    cam is kept in ``Explanation.extras["cam"]``. Maps are broadcast over input channels.

    Parameters
    ----------
    model : keras.Model
        A chain or a functional graph (a layer inside a residual block too: the gradient reaches
        it through every path; a layer called twice is taken at its first call).
    layer : str
        Name of a layer with spatial output (Conv, pooling, BN, ReLU, a merge) on the input's
        grid (no UpSampling/Cropping/transposed conv before it), e.g. ``block4_conv_b``.
    """

    method = "gradcam"
    supports_dag = True
    supports_regions = True  # a region of a per-voxel output: the gradient of its summed logits

    def __init__(self, model, *, layer="block4_conv_b", compile=True, jit_compile=False,
                 contrast=None):
        self.layer = layer
        super().__init__(model, compile=compile, jit_compile=jit_compile, contrast=contrast)
        names = [s.name for s in self.steps]
        if layer not in names:
            raise ValueError(f"gradcam: model has no layer {layer!r}; layers: {names}")
        self.layer_index = names.index(layer)
        n_spatial = len(self.input_shape) - 1
        self._geometry = []
        for step in self._path_to_layer():
            geometry = step.spatial_geometry(n_spatial)
            if geometry is None:
                raise ValueError(
                    f"gradcam: layer {layer!r} is not on the input's spatial grid (layer "
                    f"{step.name!r} ({type(step.layer).__name__}) before it removes the spatial "
                    "axes or resamples them)"
                )
            self._geometry.append(geometry)

    def _path_to_layer(self) -> list:
        """The steps from the input to the layer; in a graph, along each node's first input
        (the inputs of a merge share one grid)."""
        if self.dag is None:
            return self.steps[: self.layer_index + 1]
        path, node = [], self.dag.nodes[self.layer_index]
        while node is not None:
            path.append(node.step)
            node = self.dag.producer(node.inputs[0])
        return path[::-1]

    def __repr__(self):
        return f"GradCAMAnalyzer(layer={self.layer!r})"

    def _activation_and_upper(self, x):
        """The layer's output ``A`` and the logits as a function of ``A``."""
        if self.dag is not None:  # the first call of the layer, the rest of the graph held fixed
            tensors, _ = dag_forward(self.dag, None, x)
            tensor = self.dag.nodes[self.layer_index].output
            return tensors[tensor], lambda h: forward_from(self.dag, tensors, tensor, h)
        a = x
        for step in self.steps[: self.layer_index + 1]:
            a = step.forward(a)

        def upper(h):
            for step in self.steps[self.layer_index + 1 :]:
                h = step.forward(h)
            return h

        return a, upper

    def _graph(self, x, classes, others, mode):
        a, upper = self._activation_and_upper(x)
        logits, vjp = value_and_vjp(upper, [a])
        return self._cams(a, self._select(logits, classes, others, mode), vjp, classes.shape[0])

    def _region_graph(self, x, classes, mask):
        a, upper = self._activation_and_upper(x)
        outputs, vjp = value_and_vjp(upper, [a])
        return self._cams(a, region_head(outputs, classes, mask), vjp, classes.shape[0])

    @staticmethod
    def _cams(a, head, vjp, n_targets):
        """``ReLU(Σ_k α_k A_k)`` per target, ``α_k`` the spatial mean of the head's gradient."""
        spatial = tuple(range(1, len(a.shape) - 1))
        cams = []
        for i in range(n_targets):
            weights = ops.mean(vjp(head.cotangent[i])[0], axis=spatial, keepdims=True)
            cams.append(ops.relu(ops.sum(weights * a, axis=-1)))
        return {"maps": ops.stack(cams), "outputs": head.outputs, "target": head.chosen,
                "other": head.other}

    def alignment(self, spatial_shape) -> list[tuple[float, float]]:
        """Per axis ``(offset, scale)``: cam voxel ``i`` is centred on input ``offset + scale·i``."""
        sizes = list(spatial_shape)
        offset = [0.0] * len(sizes)
        scale = [1.0] * len(sizes)
        for kernel, strides, padding in self._geometry:
            for ax, (k, s) in enumerate(zip(kernel, strides)):
                n = sizes[ax]
                if padding == "same":
                    n_out = -(-n // s)
                    pad_before = max((n_out - 1) * s + k - n, 0) // 2
                else:
                    n_out = (n - k) // s + 1
                    pad_before = 0
                offset[ax] += scale[ax] * ((k - 1) / 2.0 - pad_before)
                scale[ax] *= s
                sizes[ax] = n_out
        return list(zip(offset, scale))

    def _run(self, x, classes, others, mode):
        result = {k: ops.convert_to_numpy(v) for k, v in self._compiled(mode)(x, classes, others).items()}
        return self._on_input_grid(x, result)

    def _explain_region(self, x, target, contrast, output_mask):
        x, spec, classes, mask = self._region_inputs(x, target, contrast, output_mask)
        result = {k: ops.convert_to_numpy(v) for k, v in self._compiled_region()(x, classes, mask).items()}
        return self._assemble(self._on_input_grid(x, result), spec)

    def _on_input_grid(self, x, result):
        """``result`` with its cams resampled onto the input grid (the cams kept as ``cam``)."""
        cam = result.pop("maps")
        spatial_in = x.shape[1:-1]
        up = cam.astype(np.float64)
        for ax, ((offset, scale), n_in) in enumerate(zip(self.alignment(spatial_in), spatial_in)):
            m = _axis_interpolation(n_in, cam.shape[2 + ax], offset, scale)
            up = np.moveaxis(np.tensordot(up, m, axes=([2 + ax], [1])), -1, 2 + ax)
        maps = np.broadcast_to(up[..., None], up.shape + (x.shape[-1],)).astype(x.dtype)
        return {**result, "maps": maps, "cam": cam}

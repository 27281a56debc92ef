"""Turn a Keras model into a chain of explainable steps.

A *step* is one Keras layer reduced to what the relevance engine needs: its kind
(linear, pooling, batch norm, reshape, pass-through), its weights as numpy arrays in the
engine's float type (:func:`float_dtype`; a snapshot taken when the analyzer is built), and
whether a ReLU follows.
This module parses single chains; anything else raises a ``ValueError`` naming the layer, and
methods that walk graphs then parse the model with :mod:`brainage.relevance._dag`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops

SUPPORTED_LAYERS = (
    "InputLayer, Dense, Conv1D/2D/3D, AveragePooling1D/2D/3D, GlobalAveragePooling1D/2D/3D, "
    "MaxPooling1D/2D/3D, GlobalMaxPooling1D/2D/3D, BatchNormalization, ReLU, "
    "Activation('relu'|'linear'), Flatten, Reshape, Dropout, SpatialDropout1D/2D/3D "
    "(softmax only as the last operation; it is skipped so relevance starts at the logit)"
)

_CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_AVG_POOL_TYPES = (
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)
_MAX_POOL_TYPES = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
)
_GLOBAL_AVG_TYPES = (
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
)
_GLOBAL_MAX_TYPES = (
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
)
_DROPOUT_TYPES = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
)


def float_dtype(layer) -> np.dtype:
    """The float type the engine computes ``layer`` (a layer, a model or a Keras tensor) in:
    float64 for one built under the ``"float64"`` dtype policy, float32 for everything else
    (float16 and bfloat16 layers too, as before)."""
    dtype = getattr(layer, "compute_dtype", None) or getattr(layer, "dtype", None)
    return np.dtype(np.float64 if dtype == "float64" else np.float32)


def _activation_name(fn) -> str:
    return getattr(fn, "__name__", str(fn))


@dataclass
class Step:
    """One layer of the chain, as seen by the relevance engine.

    Attributes
    ----------
    name : str
        Keras layer name (the key of the conservation trace).
    kind : str
        ``linear`` (Dense/Conv/Conv3DTranspose), ``avgpool``, ``maxpool``, ``bn``, ``reshape``,
        ``relu`` (ReLU layer/activation), ``identity`` (Dropout, linear activation,
        a BatchNormalization folded into the layer before it); in functional graphs also
        ``affine`` (Rescaling, multiplication by a constant), ``index`` (UpSampling, Cropping,
        ZeroPadding: each output copies one input or is zero) and the merges of
        :mod:`brainage.relevance._dag_steps`.
    layer : keras.Layer
    kernel, bias : numpy.ndarray or None
        Linear steps: weights, possibly with a BatchNormalization folded in.
    scale, shift : numpy.ndarray or None
        BatchNormalization steps: ``y = x * scale + shift`` (inference statistics).
    relu : bool
        A ReLU is applied to the output (fused ``activation="relu"`` or a ReLU layer).
    nonnegative_input : bool
        The input is known to be ≥ 0 (it comes from a ReLU through sign-preserving steps).
    op : str
        Linear steps: ``dense``, ``conv`` or ``conv_transpose`` (``conv_args`` holds strides,
        padding, dilation; a transposed convolution's kernel is stored as (..., in, out)).
    folded_bn : str or None
        Name of the BatchNormalization a canonizer merged into this linear step.
    """

    name: str
    kind: str
    layer: object
    kernel: np.ndarray | None = None
    bias: np.ndarray | None = None
    scale: np.ndarray | None = None
    shift: np.ndarray | None = None
    relu: bool = False
    nonnegative_input: bool = False
    op: str = ""
    conv_args: dict = field(default_factory=dict)
    folded_bn: str | None = None

    # ------------------------------------------------------------------ forward
    def linear(self, x, kernel):
        """The layer's linear map with ``kernel`` and without bias."""
        if self.op == "dense":
            return ops.matmul(x, kernel)
        if self.op == "conv_transpose":  # kernel kept as (..., in, out), like a convolution's
            return ops.conv_transpose(x, ops.swapaxes(kernel, -1, -2), **self.conv_args)
        return ops.conv(x, kernel, **self.conv_args)

    def pre_activation(self, x):
        """Output before the (optional) ReLU."""
        if self.kind == "linear":
            z = self.linear(x, self.kernel)
            return z + self.bias if self.bias is not None else z
        if self.kind in ("bn", "affine"):
            return x * self.scale + self.shift
        if self.kind == "index":  # a stateless copy/crop/pad layer: run it as it is
            return self.layer(x)
        if self.kind == "avgpool":
            return self._pool(x, "average")
        if self.kind == "maxpool":
            return self._pool(x, "max")
        if self.kind == "reshape":
            return ops.reshape(x, (-1,) + self._target_shape(x))
        return x

    def forward(self, x):
        z = self.pre_activation(x)
        return ops.relu(z) if self.relu else z

    def _pool(self, x, mode):
        layer = self.layer
        if isinstance(layer, _GLOBAL_AVG_TYPES + _GLOBAL_MAX_TYPES):
            axes = tuple(range(1, len(x.shape) - 1))
            reduce = ops.mean if mode == "average" else ops.max
            return reduce(x, axis=axes, keepdims=bool(getattr(layer, "keepdims", False)))
        pool = ops.average_pool if mode == "average" else ops.max_pool
        return pool(
            x,
            pool_size=layer.pool_size,
            strides=layer.strides,
            padding=layer.padding,
            data_format="channels_last",
        )

    def _target_shape(self, x):
        size = int(np.prod(x.shape[1:]))
        if isinstance(self.layer, keras.layers.Flatten):
            return (size,)
        target = [int(d) for d in self.layer.target_shape]
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = size // known
        return tuple(target)

    # ---------------------------------------------------------------- geometry
    def spatial_geometry(self, n_spatial: int):
        """Per spatial axis ``(kernel_extent, stride, padding)``, or None if not spatial."""
        layer = self.layer
        if self.kind == "linear" and self.op == "conv":
            k = tuple(
                (ks - 1) * d + 1 for ks, d in zip(layer.kernel_size, layer.dilation_rate)
            )
            return k, tuple(layer.strides), layer.padding
        if self.kind in ("avgpool", "maxpool") and not isinstance(
            layer, _GLOBAL_AVG_TYPES + _GLOBAL_MAX_TYPES
        ):
            return tuple(layer.pool_size), tuple(layer.strides), layer.padding
        if self.kind in ("bn", "relu", "identity", "affine", "add", "subtract", "concat"):
            return (1,) * n_spatial, (1,) * n_spatial, "valid"
        return None


def _layer_chain(model) -> list:
    """Layers from input to output; raises for branching graphs and nested models."""
    if isinstance(model, keras.Sequential):
        layers = list(model.layers)
    else:
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(
                f"model {model.name!r}: the relevance engine explains single-input, "
                f"single-output chains; got {len(model.inputs)} inputs and "
                f"{len(model.outputs)} outputs"
            )
        layers = []
        tensor = model.outputs[0]
        while True:
            layer, node_index, _ = tensor._keras_history
            layers.append(layer)
            if isinstance(layer, keras.layers.InputLayer):
                break
            node = layer._inbound_nodes[node_index]
            inputs = list(node.input_tensors)
            if len(inputs) != 1:
                raise ValueError(
                    f"layer {layer.name!r} ({type(layer).__name__}) has {len(inputs)} inputs: "
                    "the relevance engine explains single chains of layers, not branching graphs"
                )
            tensor = inputs[0]
        layers.reverse()
    for layer in layers:
        if isinstance(layer, keras.Model):
            raise ValueError(
                f"layer {layer.name!r} is a nested model; rebuild the network as one flat "
                "chain of layers to explain it"
            )
    return layers


def _bn_affine(layer) -> tuple[np.ndarray, np.ndarray]:
    ndim = layer.input_spec.ndim if layer.input_spec is not None else None
    if layer.axis != -1 and layer.axis != (ndim or 0) - 1:
        raise ValueError(
            f"layer {layer.name!r} (BatchNormalization): axis={layer.axis}; only the channel-last "
            "axis is supported"
        )
    mean = np.asarray(layer.moving_mean, dtype=np.float64)
    var = np.asarray(layer.moving_variance, dtype=np.float64)
    gamma = np.asarray(layer.gamma, dtype=np.float64) if layer.scale else np.ones_like(mean)
    beta = np.asarray(layer.beta, dtype=np.float64) if layer.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + layer.epsilon)
    shift = beta - mean * scale
    return scale, shift


def _check_channels_last(layer):
    fmt = getattr(layer, "data_format", "channels_last")
    if fmt != "channels_last":
        raise ValueError(
            f"layer {layer.name!r} ({type(layer).__name__}): data_format={fmt!r}; only "
            "channels_last is supported"
        )


def _linear_step(layer, is_last: bool) -> Step:
    name = layer.name
    act = _activation_name(layer.activation)
    if act not in ("relu", "linear") and not (act == "softmax" and is_last):
        raise ValueError(
            f"layer {name!r} ({type(layer).__name__}): activation {act!r} cannot be "
            "explained; use 'relu' or 'linear' (softmax only on the last layer)"
        )
    dtype = float_dtype(layer)
    kernel = np.asarray(layer.kernel, dtype=dtype)
    bias = np.asarray(layer.bias, dtype=dtype) if layer.use_bias else None
    step = Step(name, "linear", layer, kernel=kernel, bias=bias, relu=act == "relu")
    if isinstance(layer, keras.layers.Dense):
        step.op = "dense"
        return step
    _check_channels_last(layer)
    if layer.padding not in ("valid", "same") or getattr(layer, "groups", 1) != 1:
        raise ValueError(
            f"layer {name!r} ({type(layer).__name__}): padding={layer.padding!r}, "
            f"groups={getattr(layer, 'groups', 1)}; only padding 'valid'/'same' with "
            "groups=1 is supported"
        )
    step.op = "conv"
    step.conv_args = dict(
        strides=tuple(layer.strides),
        padding=layer.padding,
        data_format="channels_last",
        dilation_rate=tuple(layer.dilation_rate),
    )
    return step


def _activation_step(layer, is_last: bool) -> Step:
    name = layer.name
    if isinstance(layer, keras.layers.ReLU):
        if (
            layer.max_value is not None
            or float(layer.negative_slope) != 0.0
            or float(layer.threshold) != 0.0
        ):
            raise ValueError(
                f"layer {name!r} (ReLU): max_value/negative_slope/threshold are not supported"
            )
        return Step(name, "relu", layer, relu=True)
    act = _activation_name(layer.activation)
    if act == "relu":
        return Step(name, "relu", layer, relu=True)
    if act == "linear" or (act == "softmax" and is_last):
        return Step(name, "identity", layer)
    raise ValueError(
        f"layer {name!r} (Activation): activation {act!r} cannot be explained; use "
        "'relu' or 'linear' (softmax only as the last layer)"
    )


def _step_from_layer(layer, is_last: bool) -> Step | None:
    """The :class:`Step` for one Keras layer (None for the input layer), or a ``ValueError``
    naming a layer the engine cannot explain."""
    name = layer.name
    if isinstance(layer, keras.layers.InputLayer):
        return None
    if isinstance(layer, (keras.layers.Dense, *_CONV_TYPES)):
        return _linear_step(layer, is_last)
    if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)):
        return _activation_step(layer, is_last)
    if isinstance(layer, _AVG_POOL_TYPES + _GLOBAL_AVG_TYPES):
        _check_channels_last(layer)
        return Step(name, "avgpool", layer)
    if isinstance(layer, _MAX_POOL_TYPES + _GLOBAL_MAX_TYPES):
        _check_channels_last(layer)
        return Step(name, "maxpool", layer)
    if isinstance(layer, keras.layers.BatchNormalization):
        scale, shift = _bn_affine(layer)
        return Step(
            name, "bn", layer, scale=scale.astype(float_dtype(layer)), shift=shift.astype(float_dtype(layer))
        )
    if isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape)):
        return Step(name, "reshape", layer)
    if isinstance(layer, _DROPOUT_TYPES):
        return Step(name, "identity", layer)
    raise ValueError(
        f"layer {name!r} ({type(layer).__name__}) cannot be explained by the relevance engine; "
        f"supported layers: {SUPPORTED_LAYERS}"
    )


def build_steps(model, canonizers: Sequence = ()) -> list[Step]:
    """Parse ``model`` into a list of :class:`Step`, input to output.

    Parameters
    ----------
    model : keras.Model
        Functional or Sequential single chain.
    canonizers : sequence of Canonizer
        Applied in order to the parsed chain (see :mod:`brainage.relevance.canonizers`),
        before the signs of the layer inputs are marked.
    """
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built; call it on an input first")
    layers = [lay for lay in _layer_chain(model) if not isinstance(lay, keras.layers.InputLayer)]
    if not layers:
        raise ValueError(f"model {model.name!r} has no layers to explain")
    steps = [_step_from_layer(layer, i == len(layers) - 1) for i, layer in enumerate(layers)]
    steps = [s for s in steps if s is not None]
    # A final softmax (fused or as a layer) is dropped: relevance starts at the logit.
    last = steps[-1]
    if last.kind == "identity" and _activation_name(getattr(last.layer, "activation", None)) == "softmax":
        steps = steps[:-1]
    for canonizer in canonizers:
        steps = canonizer.apply(steps)
    _mark_nonnegative_inputs(steps)
    return steps


def _mark_nonnegative_inputs(steps: list[Step]) -> None:
    """Set ``nonnegative_input`` on every step whose input comes from a ReLU through
    sign-preserving steps (z⁺ and αβ then need no split of the input by sign)."""
    nonnegative = False
    for step in steps:
        step.nonnegative_input = nonnegative
        if step.relu:
            nonnegative = True
        elif step.kind in ("linear", "bn"):
            nonnegative = False

"""Steps for the layers and operations that functional graphs add to a chain's.

* UpSampling, Cropping and ZeroPadding are ``index`` steps: each output copies one input or is
  zero, so relevance goes back through the layer's own transpose (copies summed back, cropped
  voxels get none, padding's relevance is dropped and reported as the step's sink).
* Conv1D/2D/3DTranspose is a ``linear`` step (``op="conv_transpose"``): a linear map, so every
  rule applies as to a convolution (the modified forwards and their vector-Jacobian products).
* Rescaling and multiplication by a constant (``x * 2.0`` in a functional graph) are ``affine``
  steps: like BatchNormalization without a canonizer, relevance passes unchanged.
* Add, Subtract and Concatenate (layers, or ``a + b`` / ``a - b`` on Keras tensors) are merge steps
  with several inputs (``add``, ``subtract``, ``concat``), propagated by
  :mod:`brainage.relevance.dag_propagation`.
"""

from __future__ import annotations

import keras
import numpy as np

from brainage.relevance._graph import (
    SUPPORTED_LAYERS,
    Step,
    _activation_name,
    _check_channels_last,
    _step_from_layer,
    float_dtype,
)

MERGE_KINDS = ("add", "subtract", "concat")

SUPPORTED_GRAPH_LAYERS = (
    SUPPORTED_LAYERS + "; in functional graphs also Add, Subtract, Concatenate (and a + b, a - b), "
    "UpSampling1D/2D/3D (nearest), Cropping1D/2D/3D, ZeroPadding1D/2D/3D, Conv1D/2D/3DTranspose, "
    "Rescaling and multiplication by a constant"
)

_INDEX_TYPES = (
    keras.layers.UpSampling1D, keras.layers.UpSampling2D, keras.layers.UpSampling3D,
    keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D,
    keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D,
)
_TRANSPOSE_TYPES = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
_MERGE_LAYERS = {keras.layers.Add: "add", keras.layers.Subtract: "subtract", keras.layers.Concatenate: "concat"}
# Operations on Keras tensors (``a + b``, ``a - b``, ``a * 2.0``) appear as keras.ops classes.
_MERGE_OPS = {"Add": "add", "Subtract": "subtract"}


def _transpose_step(layer, is_last: bool) -> Step:
    act = _activation_name(layer.activation)
    if act not in ("relu", "linear") and not (act == "softmax" and is_last):
        raise ValueError(
            f"layer {layer.name!r} ({type(layer).__name__}): activation {act!r} cannot be "
            "explained; use 'relu' or 'linear' (softmax only on the last layer)"
        )
    _check_channels_last(layer)
    # Keras stores (..., out, in); the rules concatenate kernels like a convolution's (..., in, out).
    dtype = float_dtype(layer)
    kernel = np.ascontiguousarray(np.swapaxes(np.asarray(layer.kernel, dtype=dtype), -1, -2))
    bias = np.asarray(layer.bias, dtype=dtype) if layer.use_bias else None
    step = Step(layer.name, "linear", layer, kernel=kernel, bias=bias, relu=act == "relu")
    step.op = "conv_transpose"
    step.conv_args = dict(
        strides=tuple(layer.strides),
        padding=layer.padding,
        output_padding=layer.output_padding,
        data_format="channels_last",
        dilation_rate=tuple(layer.dilation_rate),
    )
    return step


def _index_step(layer) -> Step:
    _check_channels_last(layer)
    if getattr(layer, "interpolation", "nearest") != "nearest":
        raise ValueError(
            f"layer {layer.name!r} ({type(layer).__name__}): interpolation "
            f"{layer.interpolation!r}; only 'nearest' copies inputs (use it, or a Conv3DTranspose)"
        )
    return Step(layer.name, "index", layer)


def _rescaling_step(layer) -> Step:
    scale = np.asarray(layer.scale, dtype=float_dtype(layer))
    shift = np.asarray(layer.offset, dtype=float_dtype(layer))
    return Step(layer.name, "affine", layer, scale=scale, shift=shift)


def _constant_factor(op, node) -> float:
    """The constant of ``tensor * c`` (a keras.ops Multiply with one Keras tensor), or an error."""
    constants = [v for v in node.arguments.args if not isinstance(v, keras.KerasTensor)]
    if len(node.input_tensors) != 1 or len(constants) != 1 or np.ndim(constants[0]) != 0:
        raise ValueError(
            f"operation {op.name!r} (Multiply): only a tensor times a scalar constant can be "
            "explained; a product of two tensors is not linear"
        )
    return float(constants[0])


def _merge_step(op, kind: str, node) -> Step:
    n = len(node.input_tensors)
    if (kind == "subtract" and n != 2) or n < 2:
        raise ValueError(f"layer {op.name!r} ({type(op).__name__}): {n} inputs")
    step = Step(op.name, kind, op)
    if kind == "concat":
        step.conv_args = {"axis": int(op.axis)}
    return step


def step_for_operation(op, node=None, is_last: bool = False) -> Step | None:
    """The :class:`Step` for one operation of a functional graph (None for the input layer).

    Parameters
    ----------
    op : keras.Operation
        A layer, or a keras.ops operation on Keras tensors (``a + b``, ``a * 2.0``).
    node : keras Node, optional
        The call of ``op`` (needed for merges and operations; single-input layers do without).
    is_last : bool
        ``op`` produces the model output (a softmax is allowed there).
    """
    if isinstance(op, keras.Model):
        raise ValueError(f"layer {op.name!r} is a nested model; rebuild the network as one flat "
                         "graph of layers to explain it")
    if isinstance(op, tuple(_MERGE_LAYERS)):
        return _merge_step(op, next(k for t, k in _MERGE_LAYERS.items() if isinstance(op, t)), node)
    if isinstance(op, _INDEX_TYPES):
        return _index_step(op)
    if isinstance(op, _TRANSPOSE_TYPES):
        return _transpose_step(op, is_last)
    if isinstance(op, keras.layers.Rescaling):
        return _rescaling_step(op)
    if isinstance(op, keras.layers.Layer):
        return _step_from_layer(op, is_last)
    name = type(op).__name__
    if name in _MERGE_OPS and node is not None:
        return _merge_step(op, _MERGE_OPS[name], node)
    if name == "Multiply" and node is not None:
        dtype = float_dtype(node.output_tensors[0])  # an operation has no dtype policy; its output does
        factor = dtype.type(_constant_factor(op, node))
        return Step(op.name, "affine", op, scale=factor, shift=dtype.type(0.0))
    raise ValueError(
        f"operation {op.name!r} ({name}) cannot be explained by the relevance engine; "
        f"supported: {SUPPORTED_GRAPH_LAYERS}"
    )


__all__ = ["MERGE_KINDS", "SUPPORTED_GRAPH_LAYERS", "step_for_operation"]

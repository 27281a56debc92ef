"""The timed Keras network rebuilt in PyTorch with the same weights, for peer libraries (Zennit).

Keras is channels-last, PyTorch channels-first, so each weight is transposed:

* ``Conv3D`` kernel ``(kx, ky, kz, in, out)`` → ``Conv3d`` weight ``(out, in, kx, ky, kz)``
  (both are cross-correlations; only ``valid`` padding is translated);
* ``BatchNormalization`` γ, β, moving mean and variance → ``BatchNorm3d`` in eval mode, with
  Keras's ``epsilon`` (10⁻³, not PyTorch's 10⁻⁵);
* ``Flatten`` runs over ``(X, Y, Z, C)`` in Keras and ``(C, X, Y, Z)`` in PyTorch, so the rows of
  the ``Dense`` kernel that follows are permuted to the channels-first order;
* ``Dense`` kernel ``(in, out)`` → ``Linear`` weight ``(out, in)``.

A fused ``activation="relu"`` becomes its own ``nn.ReLU`` module (``<layer>_relu``), which is
what Zennit hooks. Modules are named after the Keras layers, so a rule chosen for a Keras layer
name can be given to the PyTorch module of that name.
"""
from __future__ import annotations

import numpy as np

from brainage.errors import ModelError


def _activation(layer, name: str) -> list:
    import keras
    import torch

    fn = getattr(layer, "activation", None)
    if fn is None or fn is keras.activations.linear:
        return []
    if fn is keras.activations.relu:
        return [(f"{name}_relu", torch.nn.ReLU())]
    raise ModelError(f"bench: layer {name!r}: no PyTorch translation of activation {fn.__name__!r}")


def _conv(layer) -> list:
    import torch

    if layer.padding != "valid" or tuple(layer.dilation_rate) != (1, 1, 1) or layer.groups != 1:
        raise ModelError(f"bench: layer {layer.name!r}: only valid, undilated, ungrouped Conv3D "
                         "is translated to PyTorch")
    kernel, *bias = layer.get_weights()
    conv = torch.nn.Conv3d(kernel.shape[3], kernel.shape[4], tuple(layer.kernel_size),
                           stride=tuple(layer.strides), bias=bool(bias))
    conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)))
    if bias:
        conv.bias.data = torch.from_numpy(bias[0].copy())
    return [(layer.name, conv)] + _activation(layer, layer.name)


def _batch_norm(layer) -> list:
    import torch

    channels = int(layer.moving_mean.shape[0])
    bn = torch.nn.BatchNorm3d(channels, eps=float(layer.epsilon), affine=True)
    ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    gamma = layer.gamma.numpy() if layer.scale else ones
    beta = layer.beta.numpy() if layer.center else zeros
    bn.weight.data, bn.bias.data = torch.from_numpy(gamma.copy()), torch.from_numpy(beta.copy())
    bn.running_mean.data = torch.from_numpy(np.asarray(layer.moving_mean.numpy(), np.float32).copy())
    bn.running_var.data = torch.from_numpy(np.asarray(layer.moving_variance.numpy(), np.float32).copy())
    return [(layer.name, bn)]


def _dense(layer, flatten_shape) -> list:
    import torch

    kernel, *bias = layer.get_weights()
    if flatten_shape is not None:  # rows in Keras's (X, Y, Z, C) order -> PyTorch's (C, X, Y, Z)
        spatial, channels = tuple(flatten_shape[:-1]), flatten_shape[-1]
        kernel = kernel.reshape(*spatial, channels, -1)
        kernel = np.moveaxis(kernel, len(spatial), 0).reshape(-1, kernel.shape[-1])
    linear = torch.nn.Linear(kernel.shape[0], kernel.shape[1], bias=bool(bias))
    linear.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.T))
    if bias:
        linear.bias.data = torch.from_numpy(bias[0].copy())
    return [(layer.name, linear)] + _activation(layer, layer.name)


def _modules(layer, flatten_shape) -> list:
    import keras
    import torch

    layers = keras.layers
    if isinstance(layer, layers.Conv3D):
        return _conv(layer)
    if isinstance(layer, layers.BatchNormalization):
        return _batch_norm(layer)
    if isinstance(layer, layers.ReLU):
        if layer.max_value is not None or float(layer.negative_slope) or float(layer.threshold):
            raise ModelError(f"bench: layer {layer.name!r}: only a plain ReLU is translated")
        return [(layer.name, torch.nn.ReLU())]
    if isinstance(layer, layers.AveragePooling3D) and layer.padding == "valid":
        return [(layer.name, torch.nn.AvgPool3d(tuple(layer.pool_size), tuple(layer.strides)))]
    if isinstance(layer, layers.Flatten):
        return [(layer.name, torch.nn.Flatten())]
    if isinstance(layer, layers.Dense):
        return _dense(layer, flatten_shape)
    raise ModelError(f"bench: layer {layer.name!r} ({type(layer).__name__}) has no PyTorch "
                     "translation; the peer comparison supports the taylor2019 network's layers")


def torch_network(model):
    """A ``torch.nn.Sequential`` in eval mode computing ``model``'s logits channels-first.

    Feed it ``np.moveaxis(x, -1, 1)`` for a Keras batch ``x``. Parameters do not require
    gradients (attribution needs the input's gradient only).

    Raises
    ------
    ModelError
        For a layer (or padding, activation) without a translation.
    """
    from collections import OrderedDict

    import keras
    import torch

    modules, flatten_shape = [], None
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        modules += _modules(layer, flatten_shape)
        flatten_shape = tuple(layer.input.shape[1:]) if isinstance(layer, keras.layers.Flatten) else None
    network = torch.nn.Sequential(OrderedDict(modules)).eval()
    network.requires_grad_(False)
    return network


def channels_first(x: np.ndarray) -> np.ndarray:
    """A Keras batch ``(B, X, Y, Z, C)`` as PyTorch's ``(B, C, X, Y, Z)`` (contiguous)."""
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def channels_last(x: np.ndarray) -> np.ndarray:
    """A PyTorch batch ``(B, C, X, Y, Z)`` as Keras's ``(B, X, Y, Z, C)``."""
    return np.moveaxis(x, 1, -1)

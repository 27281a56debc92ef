"""What every architecture shares: input and size checks, and the age-regression head."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from brainage.errors import ModelError


def checked_input_shape(input_shape: Sequence[int]) -> tuple:
    """``(X, Y, Z, C)`` from ``(X, Y, Z)`` or ``(X, Y, Z, C)``."""
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) == 3:
        input_shape = input_shape + (1,)
    if len(input_shape) != 4:
        raise ModelError(f"input_shape must be (X, Y, Z) or (X, Y, Z, C), got {input_shape}")
    return input_shape


def check_sizes(widths: tuple, kernel_size, dense_units, n_classes, pool_size,
                bn_momentum) -> None:
    """Every width and size positive, ``bn_momentum`` in [0, 1)."""
    if not widths:
        raise ModelError("widths must name at least one block")
    if not 0.0 <= float(bn_momentum) < 1.0:
        raise ModelError(f"bn_momentum must be in [0, 1), got {bn_momentum}")
    for label, value in [("widths", min(widths)), ("kernel_size", kernel_size),
                         ("dense_units", dense_units), ("n_classes", n_classes),
                         ("pool_size", pool_size)]:
        if int(value) < 1:
            raise ModelError(f"{label} must be positive, got {value}")


def output_head(features, n_classes: int, age_scale: tuple | None):
    """``logits`` (Dense(n_classes), float32) or, with ``age_scale``, :func:`age_head`."""
    if age_scale is None:
        return keras.layers.Dense(int(n_classes), name="logits", dtype="float32")(features)
    return age_head(features, *age_scale)


def fold_age_head(model: keras.Model) -> keras.Model:
    """The regressor with ``age_standardised`` and the fixed ``age`` folded into one Dense(1)
    ``age`` (kernel ``sd * W``, bias ``sd * b + mean``): the same outputs, one linear top layer.

    A model without ``age_standardised`` (a classifier, or already folded) is returned as is.
    """
    names = [layer.name for layer in model.layers]
    if "age_standardised" not in names:
        return model
    kernel, bias = model.get_layer("age_standardised").get_weights()
    scale, offset = model.get_layer("age").get_weights()
    sd, mean = float(scale[0, 0]), float(offset[0])
    features = model.get_layer("age_standardised").input
    top = keras.layers.Dense(1, name="age", dtype="float32")
    folded = keras.Model(model.input, top(features), name=model.name)
    top.set_weights([kernel * sd, bias * sd + mean])
    return folded

def age_head(features, mean: float, sd: float):
    """The regression head on ``features``: standardised age, then years by a fixed affine.

    ``age_standardised`` is trained; ``age`` is a non-trainable Dense(1) holding ``sd`` and
    ``mean`` (saved with the model, so a reloaded model predicts years). A Dense layer rather than
    a custom one: every relevance method already propagates through it, and DTD's conservation
    (relevance sums to the output) then holds in years.

    Raises
    ------
    ModelError
        When ``sd`` is not positive or either value is not finite.
    """
    import math

    mean, sd = float(mean), float(sd)
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
        raise ModelError(f"age standardisation needs a finite mean and a positive SD, got "
                         f"mean={mean}, sd={sd} (are all training ages equal?)")
    layers = keras.layers
    z = layers.Dense(1, name="age_standardised", dtype="float32")(features)
    years = layers.Dense(1, name="age", dtype="float32", trainable=False,
                         kernel_initializer=keras.initializers.Constant(sd),
                         bias_initializer=keras.initializers.Constant(mean))
    return years(z)


def unseen_input(model) -> dict:
    """Per spatial axis (``x``, ``y``, ``z``): how many input voxels at the high-index end reach
    no output, because a valid pooling or strided convolution leaves its last positions out and
    no later window reaches back to them.

    Walks the spatial layers (``Conv3D``, ``AveragePooling3D``, ``MaxPooling3D``) in the model's
    order, the main path of a residual network included (its 1 x 1 shortcuts change nothing).
    """
    layers = _spatial_layers(model)
    if not layers:
        return {}
    first = layers[0].input.shape[1:4]
    unseen = {name: _unseen_along([_window(layer, axis) for layer in layers], int(first[axis]))
              for axis, name in enumerate("xyz")}
    return {name: n for name, n in unseen.items() if n}


def exact_crop_sizes(model, around: Sequence[int], search: int = 24) -> list:
    """Per axis, the size nearest ``around`` (not smaller first) that leaves no voxel unseen
    (:func:`unseen_input`), or ``around`` itself where none lies within ``search`` voxels."""
    layers = _spatial_layers(model)
    sizes = []
    for axis, size in enumerate(around):
        windows = [_window(layer, axis) for layer in layers]
        candidates = [size + d for d in range(search + 1)] + [size - d for d in range(1, search + 1)]
        sizes.append(next((n for n in candidates if n > 0 and _unseen_along(windows, n) == 0),
                          int(size)))
    return sizes


def _unseen_along(windows: list, size: int) -> int:
    """Input voxels at the high end of one axis that no output reaches, through layers given as
    ``(padding, window, stride)``: sizes forward, then the reach of the last output backward."""
    sizes = [size]
    for padding, window, stride in windows:
        n = sizes[-1]
        sizes.append((n - window) // stride + 1 if padding == "valid" else -(-n // stride))
        if sizes[-1] < 1:
            return 0  # too small for the network: building it fails with its own message
    covered = sizes[-1]
    for (padding, window, stride), n in zip(reversed(windows), reversed(sizes[:-1])):
        low = 0 if padding == "valid" else max((-(-n // stride) - 1) * stride + window - n, 0) // 2
        covered = min(n, (covered - 1) * stride - low + window)
    return size - covered


def _spatial_layers(model) -> list:
    return [layer for layer in model.layers
            if type(layer).__name__ in ("Conv3D", "AveragePooling3D", "MaxPooling3D")]


def _window(layer, axis: int) -> tuple:
    """``(padding, window, stride)`` of a convolution or pooling along one axis."""
    kernel = layer.kernel_size if hasattr(layer, "kernel_size") else layer.pool_size
    return layer.padding, int(kernel[axis]), int(layer.strides[axis])

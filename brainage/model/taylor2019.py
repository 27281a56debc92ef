"""The four-block 3D CNN of Taylor 2019 (seed 000, section 3.1), ``model=taylor2019``.

Per block ``b`` (1-based) with ``k`` filters::

    block{b}_conv_a  Conv3D(k, 3, relu, valid)
    block{b}_conv_b  Conv3D(k, 3, valid)           linear: BatchNorm sits between it and the ReLU
    block{b}_bn      BatchNormalization
    block{b}_relu    ReLU
    block{b}_pool    AveragePooling3D(2)

then ``flatten`` -> ``dense1`` (Dense(32, relu)) -> ``logits`` (Dense(3), no softmax: the loss
applies it, and relevance starts at the logit). The layer names are stable: the relevance engine
addresses layers by them.

With ``task="regression"`` (issue #13) the head is ``dense1`` -> ``age_standardised`` (Dense(1),
the age in standard deviations of the training ages) -> ``age`` (a fixed, non-trainable Dense(1):
``age = sd * z + mean`` with the training split's mean and SD), so the network learns standardised
age while its output and its loss are in years. The trained model is saved with the two folded
into one Dense(1) ``age`` (:func:`fold_age_head`): the same function, and the plain chain the
relevance methods expect, whose top layer sees only the non-negative ``dense1`` activations (DTD's
z+ rule then passes the whole predicted age down; through the signed standardised age it would
be absorbed wherever that is negative, i.e. for every subject younger than the mean). At
100 x 124 x 104 x 1 the network has 253,291 parameters, 240 of them the batch-norm moving statistics (non-trainable).
"""
from __future__ import annotations

from collections.abc import Sequence

import keras

from brainage.errors import ModelError
from brainage.model.parts import check_sizes, checked_input_shape, output_head

SEED_INPUT_SHAPE = (100, 124, 104, 1)


def feature_shape(input_shape: Sequence[int], n_blocks: int, kernel_size: int = 3,
                  pool_size: int = 2) -> tuple:
    """Spatial shape after each block: two valid convolutions, then pooling (floor).

    Raises
    ------
    ModelError
        When the input is too small for ``n_blocks`` blocks; the message names the block and axis.
    """
    spatial = tuple(int(s) for s in input_shape[:3])
    shapes = []
    current = spatial
    for block in range(1, n_blocks + 1):
        after_conv = tuple(s - 2 * (kernel_size - 1) for s in current)
        pooled = tuple(s // pool_size for s in after_conv)
        for axis, (c, p) in enumerate(zip(after_conv, pooled)):
            if c < 1 or p < 1:
                smallest = minimum_input_size(n_blocks, kernel_size, pool_size)
                raise ModelError(
                    f"input shape {spatial} is too small for {n_blocks} blocks: axis {axis} is "
                    f"{current[axis]} voxels at block {block}, which leaves {max(p, 0)} after two "
                    f"{kernel_size}x{kernel_size}x{kernel_size} valid convolutions and "
                    f"pooling by {pool_size}; every axis needs at least {smallest} voxels "
                    f"(or use fewer blocks: model.widths)"
                )
        shapes.append(pooled)
        current = pooled
    return tuple(shapes)


def minimum_input_size(n_blocks: int, kernel_size: int = 3, pool_size: int = 2) -> int:
    """Smallest axis length that survives ``n_blocks`` blocks with at least one voxel."""
    size = 1
    for _ in range(n_blocks):
        size = size * pool_size + 2 * (kernel_size - 1)
    return size


def build_model(input_shape: Sequence[int] = SEED_INPUT_SHAPE,
                widths: Sequence[int] = (8, 16, 32, 64), kernel_size: int = 3,
                dense_units: int = 32, n_classes: int = 3, pool_size: int = 2,
                name: str = "taylor2019", bn_momentum: float = 0.99,
                age_scale: tuple | None = None) -> keras.Model:
    """Build the Taylor 2019 3D CNN.

    The defaults are the seed's network (section 3.1); ``configs/model/taylor2019.yaml`` holds the
    same values for the stages, which build through :class:`ModelSettings`.

    Parameters
    ----------
    input_shape : sequence of int
        ``(X, Y, Z)`` or ``(X, Y, Z, 1)``; the seed's crop is ``(100, 124, 104, 1)``.
    widths : sequence of int
        Filters per block; its length is the number of blocks (the seed has four).
    kernel_size, pool_size : int
        Convolution kernel edge and average-pooling window (both cubic).
    dense_units : int
        Units of the hidden dense layer ``dense1``.
    n_classes : int
        Outputs of ``logits`` (one per age bin).
    name : str
        Model name.
    bn_momentum : float
        Momentum of the batch-norm moving statistics (Keras's default 0.99, as in the seed). They
        start at mean 0, variance 1 and forget that start as ``momentum ** steps``: short runs
        (a few hundred steps) need a lower value such as 0.9, or inference sees other statistics
        than training did.
    age_scale : (mean, sd) or None
        None: the classifier (``logits``). ``(mean, sd)`` of the training ages: the age regressor,
        one output ``age`` in years (``n_classes`` is ignored).

    Returns
    -------
    keras.Model
        Functional model mapping ``(batch, X, Y, Z, 1)`` to ``(batch, n_classes)`` logits (or
        ``(batch, 1)`` ages in years). Layers
        follow the global dtype policy (e.g. ``mixed_float16``) except ``logits``, which stays
        float32 so the loss and the relevance start in full precision.

    Raises
    ------
    ModelError
        When a size is not positive or the input is too small for the number of blocks.
    """
    input_shape = checked_input_shape(input_shape)
    widths = tuple(int(w) for w in widths)
    check_sizes(widths, kernel_size, dense_units, n_classes, pool_size, bn_momentum)
    feature_shape(input_shape, len(widths), kernel_size, pool_size)

    inputs = keras.Input(shape=input_shape, name="input")
    x = _backbone(inputs, widths, kernel_size, pool_size, bn_momentum)
    x = keras.layers.Dense(int(dense_units), activation="relu", name="dense1")(x)
    return keras.Model(inputs, output_head(x, n_classes, age_scale), name=name)


def _backbone(inputs, widths: tuple, kernel_size: int, pool_size: int, bn_momentum: float):
    """The convolution blocks and ``flatten``: what classifier and regressor share."""
    layers = keras.layers
    x = inputs
    for block, width in enumerate(widths, start=1):
        x = layers.Conv3D(width, kernel_size, padding="valid", activation="relu",
                          name=f"block{block}_conv_a")(x)
        x = layers.Conv3D(width, kernel_size, padding="valid", name=f"block{block}_conv_b")(x)
        x = layers.BatchNormalization(momentum=float(bn_momentum), name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
        x = layers.AveragePooling3D(pool_size, name=f"block{block}_pool")(x)
    return layers.Flatten(name="flatten")(x)

"""A small residual 3D CNN (issue #14), ``model=resnet3d``: residual Adds the relevance engine
walks as a graph."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from brainage.errors import ModelError
from brainage.model.parts import check_sizes, checked_input_shape, output_head
from brainage.model.taylor2019 import SEED_INPUT_SHAPE


def build_resnet3d(input_shape: Sequence[int] = SEED_INPUT_SHAPE,
                   widths: Sequence[int] = (8, 16, 32, 64), kernel_size: int = 3,
                   dense_units: int = 32, n_classes: int = 3, pool_size: int = 2,
                   name: str = "resnet3d", bn_momentum: float = 0.99,
                   age_scale: tuple | None = None) -> keras.Model:
    """Build a small residual 3D CNN (issue #14) with stable layer names.

    ``stem_conv`` (Conv3D(widths[0], k, relu, valid)); per block ``b`` with ``k`` filters::

        block{b}_conv_a    Conv3D(k, kernel_size, relu, same)
        block{b}_conv_b    Conv3D(k, kernel_size, same)     linear: BatchNorm follows
        block{b}_bn        BatchNormalization
        block{b}_shortcut  Conv3D(k, 1)                     only where the width changes
        block{b}_add       Add (the residual connection)
        block{b}_relu      ReLU
        block{b}_pool      AveragePooling3D(pool_size)      every block but the last

    then ``global_pool`` (GlobalAveragePooling3D) -> ``dense1`` (Dense, relu) -> ``logits`` (or,
    with ``age_scale``, the age head of :func:`~brainage.model.parts.age_head`).
    Parameters, return value and errors as :func:`~brainage.model.taylor2019.build_model`; the
    input must keep at least one voxel per axis after the stem and the poolings.
    """
    input_shape = checked_input_shape(input_shape)
    widths = tuple(int(w) for w in widths)
    check_sizes(widths, kernel_size, dense_units, n_classes, pool_size, bn_momentum)
    smallest = (kernel_size - 1) + int(pool_size) ** (len(widths) - 1)
    if min(input_shape[:3]) < smallest:
        raise ModelError(f"input {input_shape[:3]} is too small for resnet3d with {len(widths)} "
                         f"blocks: every axis needs at least {smallest} voxels")
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Conv3D(widths[0], kernel_size, activation="relu", name="stem_conv")(inputs)
    for block, width in enumerate(widths, start=1):
        y = layers.Conv3D(width, kernel_size, padding="same", activation="relu",
                          name=f"block{block}_conv_a")(x)
        y = layers.Conv3D(width, kernel_size, padding="same", name=f"block{block}_conv_b")(y)
        y = layers.BatchNormalization(momentum=float(bn_momentum), name=f"block{block}_bn")(y)
        if x.shape[-1] != width:
            x = layers.Conv3D(width, 1, name=f"block{block}_shortcut")(x)
        x = layers.ReLU(name=f"block{block}_relu")(layers.Add(name=f"block{block}_add")([x, y]))
        if block < len(widths):
            x = layers.AveragePooling3D(pool_size, name=f"block{block}_pool")(x)
    x = layers.GlobalAveragePooling3D(name="global_pool")(x)
    x = layers.Dense(int(dense_units), activation="relu", name="dense1")(x)
    return keras.Model(inputs, output_head(x, n_classes, age_scale), name=name)

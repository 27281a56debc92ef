"""The Simple Fully Convolutional Network of Peng et al. 2021 (SFCN), ``model=sfcn``.

"Accurate brain age prediction with lightweight deep neural networks" (Medical Image Analysis
68, 101871): blocks of Conv3D 3x3x3 -> BatchNorm -> MaxPool(2) -> ReLU with channels
``[32, 64, 128, 256, 256]``, a last 1x1x1 Conv -> BatchNorm -> ReLU block (64 channels), average
pooling over the remaining grid, dropout and a 1x1x1 convolution to the outputs. On the pooled
(1x1x1) grid that last convolution is a Dense layer, which is what is built here (``logits``), so
the output is ``(batch, n_classes)`` like the other architectures'. The paper's soft-label
(KL-divergence) training is not reproduced: the training stage's own losses apply.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from brainage.errors import ModelError
from brainage.model.parts import check_sizes, checked_input_shape, output_head
from brainage.model.taylor2019 import SEED_INPUT_SHAPE

# The paper's channels; configs/model/sfcn.yaml defaults to far fewer (CPU training).
PAPER_CHANNELS = (32, 64, 128, 256, 256, 64)


def build_sfcn(input_shape: Sequence[int] = SEED_INPUT_SHAPE,
               widths: Sequence[int] = PAPER_CHANNELS, kernel_size: int = 3,
               n_classes: int = 3, pool_size: int = 2, name: str = "sfcn",
               bn_momentum: float = 0.99, dropout: float = 0.5,
               age_scale: tuple | None = None) -> keras.Model:
    """Build SFCN with stable layer names.

    Per block ``b`` but the last, with ``k = widths[b - 1]`` channels::

        block{b}_conv   Conv3D(k, kernel_size, same)     linear: BatchNorm follows
        block{b}_bn     BatchNormalization
        block{b}_pool   MaxPooling3D(pool_size)
        block{b}_relu   ReLU

    the last block ``B = len(widths)``: ``block{B}_conv`` (Conv3D(widths[-1], 1)) ->
    ``block{B}_bn`` -> ``block{B}_relu``; then ``global_pool`` (GlobalAveragePooling3D) ->
    ``dropout`` -> ``logits`` (Dense(n_classes), the 1x1x1 convolution on the pooled grid) or, with
    ``age_scale``, the age head of :func:`~brainage.model.parts.age_head`.

    Parameters
    ----------
    widths : sequence of int
        Channels per block; at least two (one pooling block and the 1x1x1 block).
    dropout : float
        Dropout rate before the output layer, in [0, 1) (the paper: 0.5).
    input_shape, kernel_size, n_classes, pool_size, name, bn_momentum, age_scale
        As :func:`~brainage.model.taylor2019.build_model`.

    Raises
    ------
    ModelError
        A size is not positive, fewer than two widths, ``dropout`` outside [0, 1), or an axis of
        the input shorter than ``pool_size ** (len(widths) - 1)`` (each pooling halves it).
    """
    input_shape = checked_input_shape(input_shape)
    widths = tuple(int(w) for w in widths)
    check_sizes(widths, kernel_size, 1, n_classes, pool_size, bn_momentum)
    _check_sfcn(input_shape, widths, int(pool_size), dropout)
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for block, width in enumerate(widths[:-1], start=1):
        x = layers.Conv3D(width, kernel_size, padding="same", name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(momentum=float(bn_momentum), name=f"block{block}_bn")(x)
        x = layers.MaxPooling3D(pool_size, name=f"block{block}_pool")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
    last = len(widths)
    x = layers.Conv3D(widths[-1], 1, name=f"block{last}_conv")(x)
    x = layers.BatchNormalization(momentum=float(bn_momentum), name=f"block{last}_bn")(x)
    x = layers.ReLU(name=f"block{last}_relu")(x)
    x = layers.GlobalAveragePooling3D(name="global_pool")(x)
    x = layers.Dropout(float(dropout), name="dropout")(x)
    return keras.Model(inputs, output_head(x, n_classes, age_scale), name=name)


def _check_sfcn(input_shape: tuple, widths: tuple, pool_size: int, dropout: float) -> None:
    if len(widths) < 2:
        raise ModelError(f"sfcn needs at least two widths (pooling blocks, then the 1x1x1 block), "
                         f"got {list(widths)}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ModelError(f"dropout must be in [0, 1), got {dropout}")
    smallest = pool_size ** (len(widths) - 1)
    if min(input_shape[:3]) < smallest:
        raise ModelError(f"input {input_shape[:3]} is too small for sfcn with {len(widths) - 1} "
                         f"pooling blocks: every axis needs at least {smallest} voxels (or use "
                         "fewer widths: model.widths)")

"""The small 3D U-Net (Keras functional graph) and its training.

Per level two 3×3×3 ReLU convolutions; 2× pooling (average or max) down, 2× upsampling and
concatenation with the level's skip up; a 1×1×1 convolution to one per-voxel logit (sigmoid in the
loss). No batch normalisation: the network is small and trains with Adam; the explanations need no
canonizer. Without biases every active ReLU unit has a positive input contribution, so z⁺ (DTD)
finds no dead unit and conserves exactly; average pooling passes relevance in proportion (the
engine's winner-take-all max pooling hands the whole relevance to each of tied maxima).
"""
from __future__ import annotations

from collections.abc import Sequence

POOLS = ("average", "max")


def build_unet(input_shape, filters: Sequence[int] = (4, 8, 16), pool: str = "average",
               use_bias: bool = False):
    """A U-Net with ``len(filters) - 1`` poolings; stable layer names (``enc<k>_conv<j>``, ...).

    Parameters
    ----------
    input_shape : tuple of int
        ``(x, y, z, 1)``; each spatial size a multiple of ``2 ** (len(filters) - 1)``.
    filters : sequence of int
        Channels per level, the last the bottom.
    pool : {"average", "max"}
    use_bias : bool
        Biases in every convolution.

    Returns
    -------
    keras.Model
        Output ``(batch, x, y, z, 1)``: the per-voxel logit of the structure.
    """
    import keras

    layers = keras.layers
    pooling = layers.AveragePooling3D if pool == "average" else layers.MaxPooling3D
    x = inputs = keras.Input(tuple(input_shape), name="gm")
    skips = []
    for level, width in enumerate(filters):
        name = "bottom" if level == len(filters) - 1 else f"enc{level + 1}"
        for j in (1, 2):
            x = layers.Conv3D(int(width), 3, padding="same", activation="relu",
                              use_bias=use_bias, name=f"{name}_conv{j}")(x)
        if level < len(filters) - 1:
            skips.append(x)
            x = pooling(2, name=f"{name}_pool")(x)
    for level in range(len(filters) - 2, -1, -1):
        name = f"dec{level + 1}"
        x = layers.UpSampling3D(2, name=f"{name}_up")(x)
        x = layers.Concatenate(name=f"{name}_skip")([x, skips[level]])
        for j in (1, 2):
            x = layers.Conv3D(int(filters[level]), 3, padding="same", activation="relu",
                              use_bias=use_bias, name=f"{name}_conv{j}")(x)
    outputs = layers.Conv3D(1, 1, use_bias=use_bias, name="logits")(x)
    return keras.Model(inputs, outputs, name="unet3d")


def bce_dice_loss(y_true, logits):
    """Binary cross-entropy on the logits plus the soft Dice loss of the batch (seed 003: Dice)."""
    from keras import ops

    y_true = ops.cast(y_true, logits.dtype)
    bce = ops.mean(ops.binary_crossentropy(y_true, logits, from_logits=True))
    p = ops.sigmoid(logits)
    dice = (2.0 * ops.sum(p * y_true) + 1.0) / (ops.sum(p) + ops.sum(y_true) + 1.0)
    return bce + 1.0 - dice


def train_unet(model, x, y, epochs: int, batch_size: int, learning_rate: float):
    """Fit with Adam on ``bce_dice_loss``; ``y`` is ``(n, *spatial)`` of 0/1. Returns the history dict."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(float(learning_rate)), loss=bce_dice_loss)
    history = model.fit(x, y[..., None].astype("float32"), epochs=int(epochs),
                        batch_size=int(batch_size), shuffle=True, verbose=0)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}

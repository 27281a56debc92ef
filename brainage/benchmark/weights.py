"""The timed network's weights: a trained model read from disk, or random ones that exercise every rule.

Keras initialises biases to zero and BatchNormalization to the identity (γ = 1, β = 0, moving
mean 0, variance 1). Timing does not care, but a comparison of relevance maps between two
implementations would then never see how either treats biases and BatchNormalization — the
places where implementations differ. :func:`randomize_statistics` gives every bias and every
BatchNormalization random values, so that they matter (and keeps the network alive).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from brainage.errors import ModelError

# Random values are drawn around what each layer sees on a calibration batch (uniform [0, 1]
# volumes, like the timed ones), so that BatchNormalization shifts and scales every channel yet
# the network stays alive: positive gamma and beta, a moving mean within half a standard
# deviation of the channel's mean (or above a floor, see randomize_statistics), a positive moving
# variance around the channel's, and biases up to a tenth of the layer output's spread (of either
# sign where no ReLU follows directly).
BN_GAMMA = (0.5, 1.5)
BN_BETA = (0.0, 0.5)
BN_MEAN_SHIFT = (-0.5, 0.5)      # in standard deviations of the channel
BN_VARIANCE_FACTOR = (0.5, 2.0)  # times the channel's variance
BIAS_SCALE = (-0.1, 0.1)         # times the layer output's standard deviation
CALIBRATION_BATCH = 2


def randomize_statistics(model, rng: np.random.Generator) -> None:
    """Give every BatchNormalization random γ, β and moving statistics and every Dense and
    convolution a random bias (in place; kernels stay as initialised), calibrated layer by layer
    on a random batch. ``model`` must be a single chain of layers (the ``model`` group's).

    Relevance must only reach units with positive evidence (``Σ a w > 0``), as DTD assumes:
    layers with a fused ReLU get non-positive biases, and each BatchNormalization's moving mean
    stays at or above the point where its output turns positive for a non-positive linear output
    before it (``μ ≥ max(b, 0) + βσ/γ``, ``b`` the bias of the layer before). Otherwise DTD's z⁺
    meets units with ``Σ a w⁺ = 0`` that carry relevance (it leaks), and LRP-γ's denominators
    ``z + b + γ(z⁺ + b⁺)`` cross zero (its maps blow up), which would make these weights a test
    of float32 rounding rather than of the two implementations.
    """
    import keras

    x = rng.uniform(0.0, 1.0, (CALIBRATION_BATCH, *model.input_shape[1:])).astype("float32")
    bias = None
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            _randomize_batch_norm(layer, keras.ops.convert_to_numpy(x), bias, rng)
        y = layer(x)
        bias = None
        if getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
            spread = float(np.std(keras.ops.convert_to_numpy(y)))
            bias = (spread * rng.uniform(*BIAS_SCALE, tuple(layer.bias.shape))).astype("float32")
            if getattr(layer, "activation", None) is keras.activations.relu:
                bias = -np.abs(bias)  # DTD's premise for ReLU units: a non-positive bias
            layer.bias.assign(bias)
            y = layer(x)
        x = y


def _randomize_batch_norm(layer, x: np.ndarray, bias, rng: np.random.Generator) -> None:
    axes = tuple(range(x.ndim - 1))  # channels last (the only layout the engine supports)
    mean, variance = x.mean(axis=axes), x.var(axis=axes)
    channels = mean.shape
    gamma, beta = rng.uniform(*BN_GAMMA, channels), rng.uniform(*BN_BETA, channels)
    moving_variance = np.maximum(variance, 1e-6) * rng.uniform(*BN_VARIANCE_FACTOR, channels)
    floor = np.maximum(0.0 if bias is None else bias, 0.0) + beta * np.sqrt(moving_variance + layer.epsilon) / gamma
    moving_mean = np.maximum(mean + np.sqrt(variance) * rng.uniform(*BN_MEAN_SHIFT, channels), floor)
    values = {"gamma": gamma, "beta": beta, "moving_mean": moving_mean, "moving_variance": moving_variance}
    for name, value in values.items():
        variable = getattr(layer, name, None)
        if variable is not None:  # center=False / scale=False layers lack beta / gamma
            variable.assign(value.astype("float32"))


def load_trained(path: Path):
    """The Keras model saved at ``path`` (a ``.keras`` file of ``make train``), uncompiled.

    Raises
    ------
    ModelError
        When the file cannot be read as a Keras model, or its input is not ``(X, Y, Z, 1)``.
    """
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as err:
        raise ModelError(f"bench: cannot load model_path={path}: {err}") from None
    shape = tuple(model.input_shape[1:])
    if len(shape) != 4 or shape[-1] != 1 or None in shape:
        raise ModelError(f"bench: model_path={path} takes inputs {shape}; the benchmark needs "
                         "volumes (X, Y, Z, 1)")
    return model

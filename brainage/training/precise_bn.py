"""Precise BatchNorm: population statistics recomputed over the training split with frozen weights.

During training the moving statistics of a BatchNormalization layer are an exponential average of
batch statistics taken while the weights moved: after a few hundred fast steps they describe an
earlier network, and the model validated in inference mode is not the one trained (the quick
experiment sat at chance validation accuracy for most epochs). Wu & Johnson 2021 ("Rethinking
'Batch' in BatchNorm", section 3) replace them, before evaluation, by statistics of the training
data under the current weights; fvcore's ``update_bn_stats`` is the reference procedure and is
followed here:

- the network runs in training mode over ``n`` batches of the training split (every BN layer
  normalises by its batch's statistics, as in training) while the weights stay fixed;
- per layer and channel the population mean is the batch means' average and the population
  variance that of all the batches' activations together, ``E[x^2] - E[x]^2`` with
  ``E[x^2] = mean_b^2 + var_b`` per batch, both weighted by batch size (fvcore's
  ``_PopulationVarianceEstimator``; Keras's batch variance is the biased one, so no Bessel
  correction is undone). With equal batches the mean is the plain mean of batch means.

Only ``moving_mean`` and ``moving_variance`` change: the pass runs in a
:class:`keras.StatelessScope`, so the training-mode calls update nothing, then the new statistics
are assigned. Layers that are frozen (``trainable=False``, which Keras runs in inference mode) or
use batch renormalisation are left alone. Models are flat functional graphs (as
:func:`brainage.model.build_model` builds); BN layers inside nested models are not visited.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import keras
import numpy as np

log = logging.getLogger(__name__)


@dataclass
class PopulationMoments:
    """Running per-channel sums of a layer's batch moments, in float64."""

    count: float = 0.0
    total: np.ndarray = field(default_factory=lambda: np.zeros(0))
    total_square: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def add(self, batch_mean, batch_variance, batch_size: int) -> None:
        """One batch's per-channel mean and (biased) variance, weighted by its size."""
        batch_mean = np.asarray(batch_mean, dtype=np.float64)
        batch_square = batch_mean ** 2 + np.asarray(batch_variance, dtype=np.float64)
        if not self.count:
            self.total = np.zeros_like(batch_mean)
            self.total_square = np.zeros_like(batch_mean)
        self.count += batch_size
        self.total += batch_size * batch_mean
        self.total_square += batch_size * batch_square

    @property
    def mean(self) -> np.ndarray:
        return self.total / self.count

    @property
    def variance(self) -> np.ndarray:
        # E[x^2] - E[x]^2 can round below zero for a constant channel.
        return np.maximum(self.total_square / self.count - self.mean ** 2, 0.0)


def recomputed_layers(model) -> list:
    """The BatchNormalization layers whose statistics precise BN recomputes."""
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)
            and layer.trainable and not layer.renorm]


def batch_moments_model(model, layers):
    """A model from ``model``'s inputs to the per-channel mean and variance of each layer's input.

    It shares ``model``'s layers (and so its weights): called with ``training=True`` it runs the
    network as training does, every earlier BN layer normalising by batch statistics.
    """
    outputs = []
    for layer in layers:
        x = keras.ops.cast(layer.input, "float32")  # as BN computes in float32 under float16
        axis = layer.axis if layer.axis >= 0 else len(x.shape) + layer.axis
        axes = [a for a in range(len(x.shape)) if a != axis]
        outputs += list(keras.ops.moments(x, axes=axes))
    return keras.Model(model.input, outputs, name=f"{model.name}_bn_moments")


def training_mode_call(model):
    """``model`` called in training mode with no state changed, compiled once: a tf.function on
    TensorFlow, jax.jit of the stateless call on JAX (eager calls cost 10x the compiled pass
    on the CPU: precise BN took longer than the epoch it followed)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        call = jax.jit(lambda trainable, other, x: model.stateless_call(
            trainable, other, x, training=True)[0])
        return lambda x: call([v.value for v in model.trainable_variables],
                              [v.value for v in model.non_trainable_variables], x)

    def stateless(x):
        with keras.StatelessScope():  # the training-mode call must not move the statistics
            return model(x, training=True)

    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(stateless, reduce_retracing=True)
    return stateless


def population_statistics(model, batches, n_batches: int | None = None) -> dict:
    """``{layer name: (mean, variance)}`` over the first ``n_batches`` of ``batches``.

    Parameters
    ----------
    model : keras.Model
        A functional model; its weights and statistics are not changed.
    batches : sequence
        ``batches[i]`` is an input batch, or a tuple whose first item is one (a
        :class:`~brainage.data.stream.VolumeSequence`).
    n_batches : int, optional
        How many batches to average (default: all).
    """
    layers = recomputed_layers(model)
    if not layers:
        return {}
    moments_of = training_mode_call(batch_moments_model(model, layers))
    moments = {layer.name: PopulationMoments() for layer in layers}
    n_batches = len(batches) if n_batches is None else min(int(n_batches), len(batches))
    for index in range(n_batches):
        x = batches[index]
        x = x[0] if isinstance(x, (tuple, list)) else x
        values = [keras.ops.convert_to_numpy(v) for v in moments_of(x)]
        for k, layer in enumerate(layers):
            moments[layer.name].add(values[2 * k], values[2 * k + 1], len(x))
    return {name: (m.mean, m.variance) for name, m in moments.items()}


def update_bn_statistics(model, batches, n_batches: int | None = None) -> int:
    """Replace the moving statistics of ``model``'s BN layers by their population statistics.

    See :func:`population_statistics`; returns how many layers were updated.
    """
    statistics = population_statistics(model, batches, n_batches)
    for layer in recomputed_layers(model):
        mean, variance = statistics[layer.name]
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
    return len(statistics)


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recompute the BN statistics before every validation (so also before each checkpoint and
    the kept best epoch are saved, which follow validation).

    ``batches`` is a fixed sequence of the training split (see
    :func:`brainage.training.inputs.precise_bn_sequence`); it must run after
    :class:`~brainage.training.callbacks.EpochClock`, whose training time ends where it begins.
    """

    def __init__(self, batches, n_batches: int | None = None):
        super().__init__()
        self.batches, self.n_batches = batches, n_batches

    def on_test_begin(self, logs=None):
        n = update_bn_statistics(self.model, self.batches, self.n_batches)
        log.debug("precise BN: statistics of %d layers recomputed", n)

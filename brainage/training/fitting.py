"""Running the network over the splits: fitting with the stage's callbacks, predicting the test split.

Both run inside the :class:`~brainage.training.distribution.Distribution`'s scope, so the model,
its optimizer state, fitting and prediction live on the distribution's devices.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from brainage.errors import DistributionError, TrainError
from brainage.training.callbacks import stage_callbacks
from brainage.training.checkpoint import CHECKPOINT_DIR, RunState
from brainage.training.distribution import Distribution, resolve_distribution
from brainage.training.inputs import (
    SplitSequences,
    class_weights,
    precise_bn_sequence,
    split_sequences,
)
from brainage.training.model_setup import compiled_model
from brainage.training.settings import TrainSettings

log = logging.getLogger(__name__)


def training_distribution(settings: TrainSettings, backend: str) -> Distribution:
    """``trainer.distribution`` resolved on this machine; the global batch must split evenly.

    Raises
    ------
    TrainError
        Data parallelism the machine cannot provide, or a batch that does not split evenly.
    """
    try:
        distribution = resolve_distribution(settings.distribution, backend)
        per_device = distribution.per_replica_batch(settings.batch_size)
    except DistributionError as err:
        raise TrainError(str(err)) from err
    if distribution.n_replicas > 1:
        log.info("%s: global batch %d = %d x %d per device", distribution.describe(),
                 settings.batch_size, distribution.n_replicas, per_device)
    return distribution


def fit_model(settings: TrainSettings, data, state: RunState, run_dir: Path,
              distribution: Distribution, devices: list, callbacks=()):
    """Fit (or continue fitting) the network; returns the model with the best epoch's weights
    and the split sequences.

    ``callbacks`` run after the stage's own, which checkpoint before them.
    """
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    model = compiled_model(settings, data, state, checkpoint_dir, devices)
    sequences = split_sequences(settings, data)
    train_data, fit_class_weight = distribution.batches(sequences.train, class_weights(data, settings))
    val_data, _ = distribution.batches(sequences.val)
    log.info(
        "train %d / val %d / test %d volumes of %s, %d parameters, batch %d, %d epochs%s",
        len(data.indices("train")), len(data.indices("val")), len(data.indices("test")),
        "x".join(str(s) for s in data.input_shape[:3]), model.count_params(),
        settings.batch_size, settings.epochs,
        f", resuming after epoch {state.epochs_done}" if settings.resume else "",
    )
    if state.epochs_done < settings.epochs and not state.stopped_early:
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=settings.epochs,
            initial_epoch=state.epochs_done,
            class_weight=fit_class_weight,
            # The sequence shuffles itself by (seed, epoch); Keras's own batch shuffle would draw
            # from Python's global RNG, which a resumed process does not share.
            shuffle=False,
            callbacks=stage_callbacks(settings, state, run_dir, sequences.train,
                                      _precise_bn_batches(settings, data))
            + list(callbacks),
            verbose=settings.keras_verbosity,
        )
    if state.best_weights:
        model.load_weights(checkpoint_dir / state.best_weights)
    return model, sequences


def _precise_bn_batches(settings: TrainSettings, data):
    """The training split as precise BN reads it, or None when it is off.

    Its batches are the global batch: what one BN layer normalises over in training on one
    device and under JAX's DataParallel (one computation over the whole batch). TensorFlow's
    MirroredStrategy normalises per device in training; population statistics taken over the
    larger global batch are closer to the population normalisation that inference uses (and
    keep a data-parallel run on the one-device curve, which the two-device test checks).
    """
    if not settings.precise_bn:
        return None
    return precise_bn_sequence(settings, data, settings.batch_size)


def predict_test(model, sequences: SplitSequences, data, distribution: Distribution,
                 split: str = "test"):
    """Outputs (logits, or ages of a regression) of the test split (or ``split``) in split
    order, and the seconds prediction took."""
    split_data, _ = distribution.batches(getattr(sequences, split))
    start = time.perf_counter()
    # Padding that splits a short batch evenly over devices comes last: keep the real rows.
    logits = model.predict(split_data, verbose=0)[:len(data.indices(split))]
    return logits, time.perf_counter() - start

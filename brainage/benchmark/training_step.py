"""Time one optimisation step (Adam, softmax cross-entropy on the logits) of a fresh network."""
from __future__ import annotations

import numpy as np

from brainage.benchmark.network import build_network
from brainage.benchmark.settings import BenchSettings
from brainage.benchmark.timing import time_call

LEARNING_RATE = 1e-3  # irrelevant to the time; Adam's usual value


def _policies(settings: BenchSettings) -> list[str]:
    return ["float32"] + (["mixed_float16"] if settings.mixed_precision else [])


def _fresh_network(settings: BenchSettings, trained):
    """The network to train: the ``model`` group's, or a fresh copy of a trained model's layers."""
    import keras


    return build_network(settings) if trained is None else keras.models.clone_model(trained)


def training_step_entries(settings: BenchSettings, x: np.ndarray, n_classes: int, trained=None) -> dict:
    """``train_ms``/``train_volumes_per_s`` (and ``train_mixed_*`` with mixed precision).

    Each policy gets its own network, built under that global dtype policy (``trained``: a
    freshly initialised copy of that model, float32 only); the policy is reset to ``float32``
    afterwards whatever happens.
    """
    import keras

    batch = len(x)
    labels = np.arange(batch) % n_classes
    out = {}
    for policy in _policies(settings):
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = _fresh_network(settings, trained)
            model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            median_s = time_call(lambda m=model: m.train_on_batch(x, labels), settings.repeats).median_s
        finally:
            keras.mixed_precision.set_global_policy("float32")
        tag = "train" if policy == "float32" else "train_mixed"
        out[f"{tag}_ms"] = 1000 * median_s / batch
        out[f"{tag}_volumes_per_s"] = batch / median_s
    return out

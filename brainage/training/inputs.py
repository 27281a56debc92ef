"""What the network is fed: the train/val/test splits as streamed batch sequences, class weights.

The targets are the age bins (classification) or the ages in years (``model.task=regression``).
"""
from __future__ import annotations

from dataclasses import dataclass

from brainage.data.stream import VolumeSequence
from brainage.training.settings import TrainSettings


@dataclass(frozen=True)
class SplitSequences:
    """One :class:`~brainage.data.stream.VolumeSequence` per split; only ``train`` shuffles and
    augments."""

    train: object
    val: object
    test: object


def split_sequences(settings: TrainSettings, data) -> SplitSequences:
    """Batches of ``settings.batch_size`` volumes of each split, read by the configured workers.

    Augmentation is small translations only. No left-right flips: the brain is not symmetric
    (ageing effects and anatomy are lateralised), and the relevance maps are read in world space,
    where a flipped training image would teach the network to ignore the side of an effect.
    """
    labels = fit_targets(settings, data)
    common = dict(batch_size=settings.batch_size, workers=settings.stream_workers,
                  max_queue_size=settings.stream_prefetch)
    return SplitSequences(
        train=VolumeSequence(data.volumes, data.indices("train"), labels, shuffle=True,
                             seed=settings.seed, max_shift=settings.max_shift, **common),
        val=VolumeSequence(data.volumes, data.indices("val"), labels, **common),
        test=VolumeSequence(data.volumes, data.indices("test"), labels, **common),
    )


def fit_targets(settings: TrainSettings, data):
    """Per row of the cohort: its age bin, or its age in years (float32) for a regression."""
    import numpy as np

    if settings.model.is_regression:
        return data.table["age"].to_numpy(dtype=np.float32)
    return data.labels()


def age_scale(data) -> tuple:
    """``(mean, sd)`` of the training split's ages: the regression head's fixed affine."""
    ages = data.table["age"].to_numpy(dtype=float)[data.indices("train")]
    return float(ages.mean()), float(ages.std())


def precise_bn_sequence(settings: TrainSettings, data, batch_size: int):
    """The training split as precise BN reads it (:mod:`brainage.training.precise_bn`).

    One fixed order, the first epoch's shuffle of the run's seed, so every batch mixes age bins
    as training batches do (the table order would give single-bin batches, whose statistics
    upstream BN layers would normalise away) and every epoch averages the same batches (a resumed
    run recomputes what the uninterrupted one did). No augmentation: validation, test and
    explanation see unshifted volumes. ``batch_size``: the training batch, as one BN layer
    normalises over it (the statistics of every later layer depend on it).
    """
    return VolumeSequence(data.volumes, data.indices("train"), None, batch_size=batch_size,
                          shuffle=True, seed=settings.seed, max_shift=0)


def class_weights(data, settings: TrainSettings | None = None) -> dict | None:
    """``{bin: weight}`` as Keras takes it, or None when the data stage did not weight bins or
    the run is a regression (its targets are ages, not bins)."""
    if not data.class_weights or (settings is not None and settings.model.is_regression):
        return None
    return {int(k): float(v) for k, v in data.class_weights.items()}

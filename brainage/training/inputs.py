"""What the network is fed: the train/val/test splits as streamed batch sequences, class weights."""
from __future__ import annotations

from dataclasses import dataclass

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
    from brainage.data.stream import VolumeSequence

    labels = data.labels()
    common = dict(batch_size=settings.batch_size, workers=settings.stream_workers,
                  max_queue_size=settings.stream_prefetch)
    return SplitSequences(
        train=VolumeSequence(data.volumes, data.indices("train"), labels, shuffle=True,
                             seed=settings.seed, max_shift=settings.max_shift, **common),
        val=VolumeSequence(data.volumes, data.indices("val"), labels, **common),
        test=VolumeSequence(data.volumes, data.indices("test"), labels, **common),
    )


def class_weights(data) -> dict | None:
    """``{bin: weight}`` as Keras takes it, or None when the data stage did not weight bins."""
    if not data.class_weights:
        return None
    return {int(k): float(v) for k, v in data.class_weights.items()}

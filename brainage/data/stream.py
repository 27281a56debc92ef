"""Batches of cropped volumes for Keras, read from the (memory-mapped) cache with prefetch."""
from __future__ import annotations

import math

import keras
import numpy as np


def shift_volume(volume: np.ndarray, shift) -> np.ndarray:
    """Translate a 3D volume by integer voxels, filling with zeros (no wrap-around)."""
    out = np.zeros_like(volume)
    src, dst = [], []
    for s, n in zip(shift, volume.shape):
        s = int(s)
        src.append(slice(max(-s, 0), n - max(s, 0)))
        dst.append(slice(max(s, 0), n - max(-s, 0)))
    out[tuple(dst)] = volume[tuple(src)]
    return out


class VolumeSequence(keras.utils.PyDataset):
    """Batches ``(x[..., None], y)`` of the rows ``indices`` of ``volumes``.

    Shuffling and augmentation are functions of ``(seed, epoch, position)`` only, so a run is
    reproducible whatever the number of workers, and a resumed run continues the same sequence
    (``set_epoch``).

    Parameters
    ----------
    volumes : array (N, X, Y, Z)
        Usually the read-only memmap of the cache; rows are read lazily per batch.
    indices : array of int
        Rows of ``volumes`` in this dataset.
    labels : array of int or float, or None
        Class (int) or age (float) per row of ``volumes`` (indexed like ``volumes``); None yields
        inputs only.
    batch_size : int
    shuffle : bool
        New seeded order each epoch.
    max_shift : int
        Random translation of up to this many voxels per axis (0 = no augmentation).
    workers, use_multiprocessing, max_queue_size
        Passed to ``keras.utils.PyDataset`` (prefetching reader threads/processes).
    """

    def __init__(self, volumes, indices, labels=None, batch_size=8, shuffle=False, seed=0,
                 max_shift=0, workers=1, use_multiprocessing=False, max_queue_size=4):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        self.volumes = volumes
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = None if labels is None else _targets(labels)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.max_shift = int(max_shift)
        self.epoch = 0
        if len(self.indices) == 0:
            raise ValueError("VolumeSequence needs at least one volume")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return self.indices
        rng = np.random.default_rng([self.seed, self.epoch])
        return self.indices[rng.permutation(len(self.indices))]

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __getitem__(self, batch: int):
        rows = self._order()[batch * self.batch_size:(batch + 1) * self.batch_size]
        # Sorted reads are sequential on the memmap; the original order is restored after.
        order = np.argsort(rows, kind="stable")
        x = np.empty((len(rows),) + tuple(self.volumes.shape[1:]), dtype=np.float32)
        x[order] = np.asarray(self.volumes[np.sort(rows)], dtype=np.float32)
        if self.max_shift:
            rng = np.random.default_rng([self.seed, self.epoch, batch, 7])
            shifts = rng.integers(-self.max_shift, self.max_shift + 1, size=(len(rows), 3))
            for i in range(len(rows)):
                x[i] = shift_volume(x[i], shifts[i])
        x = x[..., None]
        if self.labels is None:
            return (x,)
        return x, self.labels[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1


def _targets(labels) -> np.ndarray:
    """Class indices stay int64; real-valued targets (ages of a regression) become float32."""
    labels = np.asarray(labels)
    return labels.astype(np.float32) if labels.dtype.kind == "f" else labels.astype(np.int64)

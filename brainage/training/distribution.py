"""Multi-device set-up: the one place that decides how training spreads over devices.

``trainer.distribution`` (``configs/trainer/default.yaml``):

``none``
    One device, the backend's default.
``data_parallel``
    Every device of the fastest kind present (GPUs, else TPUs, else CPUs) holds a copy of the
    model; each global batch (``trainer.batch_size``) is split evenly across them and their
    gradients are averaged, so a step equals a one-device step on the same global batch in
    expectation. JAX: ``keras.distribution.DataParallel`` (one global computation sharded along
    the batch, batch-norm statistics over the whole batch). TensorFlow:
    ``tf.distribute.MirroredStrategy`` (one replica per device; batch-norm statistics per replica).
``auto`` (default)
    ``data_parallel`` when more than one GPU or TPU is visible, else ``none``.

:func:`backend_devices` is the one place that lists the devices a Keras backend sees.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import keras
import numpy as np

from brainage.errors import DistributionError

DISTRIBUTIONS = ("auto", "none", "data_parallel")
ACCELERATORS = ("gpu", "tpu")


@dataclass
class Distribution:
    """How training is placed: ``kind`` none or data_parallel over ``devices``.

    Use :meth:`scope` around building, compiling, fitting and predicting with the model.
    """

    kind: str
    backend: str
    devices: list = field(default_factory=list)
    _handle: object = None  # the MirroredStrategy or keras.distribution.DataParallel

    @property
    def n_replicas(self) -> int:
        return len(self.devices) if self.kind == "data_parallel" else 1

    def per_replica_batch(self, global_batch: int) -> int:
        """The share of each device; the global batch must split evenly."""
        global_batch = int(global_batch)
        if global_batch % self.n_replicas:
            raise DistributionError(
                f"trainer.batch_size={global_batch} (the global batch) does not split evenly over "
                f"{self.n_replicas} devices; use a multiple of {self.n_replicas}, e.g. "
                f"trainer.batch_size={self.n_replicas * max(global_batch // self.n_replicas, 1)}")
        return global_batch // self.n_replicas

    def scope(self):
        """Context in which variables are created replicated and batches are split."""
        if self.kind == "none":
            return contextlib.nullcontext()
        return self._handle.scope()

    def batches(self, seq, class_weight=None):
        """``(dataset, class_weight)`` to give Keras for the sequence ``seq``.

        Data parallelism needs every batch to split evenly across the devices (JAX refuses
        anything else; TensorFlow's convolutions fail on a replica left with no volume), so a
        short last batch is padded to a multiple of the device count with zero-weight copies of
        its last volume (their predictions come last and are to be dropped), and class weights
        travel as sample weights. With one device ``seq`` and ``class_weight`` pass unchanged.
        """
        if self.n_replicas == 1:
            return seq, class_weight
        return ReplicaBatches(seq, self.n_replicas, class_weight), None

    def describe(self) -> str:
        if self.kind == "none":
            return "one device"
        return f"data parallel over {self.n_replicas} devices ({', '.join(self.devices)})"


class ReplicaBatches(keras.utils.PyDataset):
    """Batches of ``seq`` whose size is a multiple of ``n_replicas``, with sample weights.

    A short batch is padded with copies of its last volume weighted 0: the loss, gradients and
    metrics ignore them apart from the loss's division by the (padded) batch size. Epoch
    bookkeeping (``set_epoch``, ``on_epoch_end``) passes through to ``seq``.
    """

    def __init__(self, seq, n_replicas: int, class_weight=None):
        super().__init__(workers=seq.workers, use_multiprocessing=seq.use_multiprocessing,
                         max_queue_size=seq.max_queue_size)
        self.seq = seq
        self.n_replicas = int(n_replicas)
        self.class_weight = class_weight

    def __len__(self) -> int:
        return len(self.seq)

    def __getitem__(self, batch: int):
        items = self.seq[batch]
        x = items[0]
        n = len(x)
        pad = -n % self.n_replicas
        if pad:
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        if len(items) == 1:
            return (x,)
        y = items[1]
        if self.class_weight:
            weights = np.array([self.class_weight.get(int(k), 1.0) for k in y], np.float32)
        else:
            weights = np.ones(n, np.float32)
        if pad:
            y = np.concatenate([y, np.repeat(y[-1:], pad)])
            weights = np.concatenate([weights, np.zeros(pad, np.float32)])
        return x, y, weights

    def set_epoch(self, epoch: int) -> None:
        self.seq.set_epoch(epoch)

    def on_epoch_end(self) -> None:
        self.seq.on_epoch_end()


def backend_devices(backend: str, kind: str | None = None) -> list:
    """Names of the devices of ``kind`` (gpu, tpu, cpu; None = the backend's default ones).

    JAX devices read ``<platform>:<id> (<device kind>)``, e.g. ``gpu:0 (NVIDIA H100 80GB HBM3)``;
    TensorFlow's are its logical device names; torch's ``cuda:<i>`` or ``cpu``.
    """
    if backend == "jax":
        return [f"{d.platform}:{d.id} ({getattr(d, 'device_kind', d.platform)})"
                for d in _jax_devices(kind)]
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices(kind.upper() if kind else None)]
    if backend == "torch":
        import torch

        gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        if kind == "cpu":
            return ["cpu"]
        if kind is None:
            return gpus or ["cpu"]
        return gpus if kind == "gpu" else []
    return [backend] if kind is None else []


def replica_devices(backend: str) -> list:
    """The devices data parallelism uses: all GPUs, else all TPUs, else all CPUs."""
    for kind in ACCELERATORS + ("cpu",):
        devices = backend_devices(backend, kind)
        if devices:
            return devices
    return []


def auto_setting(backend: str) -> str:
    """What ``trainer.distribution=auto`` means here: data parallel over 2+ GPUs or TPUs."""
    accelerators = [d for kind in ACCELERATORS for d in backend_devices(backend, kind)]
    return "data_parallel" if len(accelerators) > 1 else "none"


def resolve_distribution(setting="auto", backend: str | None = None) -> Distribution:
    """The :class:`Distribution` for ``trainer.distribution`` on this machine.

    Parameters
    ----------
    setting : {"auto", "none", "data_parallel"} or None
        None means ``auto``.
    backend : str, optional
        The Keras backend (default: the active one).

    Raises
    ------
    DistributionError
        An unknown setting, or data parallelism on a backend that has no support for it here.
    """
    setting = str(setting or "auto").lower()
    if setting not in DISTRIBUTIONS:
        raise DistributionError(f"trainer.distribution={setting!r}; expected one of "
                                f"{', '.join(DISTRIBUTIONS)}")
    if backend is None:
        backend = keras.backend.backend()
    if setting == "auto":
        setting = auto_setting(backend)
    if setting == "none":
        return Distribution("none", backend)
    return _data_parallel(backend)


def _data_parallel(backend: str) -> Distribution:
    devices = replica_devices(backend)
    if backend == "jax":
        platform = devices[0].split(":")[0]
        handle = keras.distribution.DataParallel(devices=_jax_devices(platform))
    elif backend == "tensorflow":
        import tensorflow as tf

        if any("TPU" in d for d in devices):
            raise DistributionError("trainer.distribution=data_parallel on TPUs needs the jax "
                                    "backend (KERAS_BACKEND=jax)")
        # One device: MirroredStrategy still works (and keeps the code path the same).
        handle = tf.distribute.MirroredStrategy(devices=devices)
    else:
        raise DistributionError(f"trainer.distribution=data_parallel is supported on the jax and "
                                f"tensorflow backends, not {backend}; use trainer.distribution=none")
    return Distribution("data_parallel", backend, devices, handle)


def _jax_devices(kind: str | None = None) -> list:
    import jax

    try:
        return jax.devices(kind)
    except RuntimeError:  # no such platform
        return []

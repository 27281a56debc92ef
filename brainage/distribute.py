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

:func:`measure_stream` times the input pipeline (volumes/s read from a cache by 1, 2, 4 reader
workers) and :func:`peak_memory` follows a process's resident memory while it streams.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
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
    """Device names of ``kind`` (gpu, tpu, cpu; None = all) visible to the Keras backend."""
    if backend == "jax":
        return [f"{d.platform}:{d.id}" for d in _jax_devices(kind)]
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices(kind.upper() if kind else None)]
    if backend == "torch":
        import torch

        if kind in (None, "gpu"):
            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return ["cpu"] if kind == "cpu" else []
    return []


def replica_devices(backend: str) -> list:
    """The devices data parallelism uses: all GPUs, else all TPUs, else all CPUs."""
    for kind in ACCELERATORS + ("cpu",):
        devices = backend_devices(backend, kind)
        if devices:
            return devices
    return []


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
        accelerators = [d for kind in ACCELERATORS for d in backend_devices(backend, kind)]
        setting = "data_parallel" if len(accelerators) > 1 else "none"
    if setting == "none":
        return Distribution("none", backend)

    devices = replica_devices(backend)
    if backend == "jax":
        by_name = {f"{d.platform}:{d.id}": d for d in _jax_devices(devices[0].split(":")[0])}
        handle = keras.distribution.DataParallel(devices=[by_name[d] for d in devices])
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


# --------------------------------------------------------------------------- input pipeline

def measure_stream(cache, batch_size: int = 8, workers=(1, 2, 4), max_batches: int | None = None,
                   cold: bool = True) -> list:
    """Volumes per second that ``workers`` reader threads deliver from a cache file.

    Each worker count reads the batches the training stage would: a
    :class:`~brainage.data.stream.VolumeSequence` over all rows of a freshly opened read-only
    memmap, fetched in order by a pool of reader threads with a bounded queue, as Keras's
    ``PyDataset`` workers do.

    Parameters
    ----------
    cache : path
        A ``volumes.npy`` of the cache (rows x crop shape).
    batch_size : int
    workers : sequence of int
        Reader thread counts to measure, in turn.
    max_batches : int, optional
        Read only this many batches per measurement.
    cold : bool
        Drop the file from the page cache before each measurement (``posix_fadvise``), so the
        numbers include reading from disk, as on a cohort larger than memory.

    Returns
    -------
    list of dict
        Per worker count: ``workers``, ``volumes``, ``seconds``, ``volumes_per_s``, ``mb_per_s``.
    """
    from brainage.data.stream import VolumeSequence

    results = []
    for n_workers in workers:
        if cold:
            _drop_page_cache(cache)
        volumes = np.load(cache, mmap_mode="r")
        seq = VolumeSequence(volumes, np.arange(len(volumes)), batch_size=batch_size)
        n_batches = len(seq) if max_batches is None else min(int(max_batches), len(seq))
        bytes_per_volume = int(np.prod(volumes.shape[1:])) * volumes.dtype.itemsize
        start = time.perf_counter()
        n_volumes = sum(len(batch[0]) for batch in _prefetched(seq, n_batches, int(n_workers)))
        seconds = time.perf_counter() - start
        del seq, volumes  # unmapped, so the next cold measurement really starts cold
        results.append({"workers": int(n_workers), "volumes": n_volumes,
                        "seconds": round(seconds, 3),
                        "volumes_per_s": round(n_volumes / seconds, 1),
                        "mb_per_s": round(n_volumes * bytes_per_volume / seconds / 2**20, 1)})
    return results


def _prefetched(seq, n_batches: int, workers: int, queue_size: int = 4):
    """Batches ``0 .. n_batches-1`` in order, read ahead by ``workers`` threads."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = deque()
        for i in range(n_batches):
            pending.append(pool.submit(seq.__getitem__, i))
            if len(pending) >= workers + queue_size:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _drop_page_cache(path) -> None:
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def memory_status() -> dict:
    """This process's resident memory in MiB: ``rss``, ``anon`` (private), ``file`` (mapped pages)."""
    wanted = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "VmHWM": "peak_rss"}
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in wanted:
                out[wanted[key]] = int(value.split()[0]) / 1024
    return out


@contextlib.contextmanager
def peak_memory(interval: float = 0.01):
    """Follow resident memory while the block runs; yields a dict filled with peaks (MiB).

    Keys: ``anon`` (private memory: what the process itself holds), ``rss`` (anon plus mapped
    file pages, which the kernel can drop and re-read) and ``peak_rss`` (the kernel's high-water
    mark). Linux only.
    """
    peaks = {"anon": 0.0, "rss": 0.0, "peak_rss": 0.0}
    done = threading.Event()

    def sample():
        while True:
            status = memory_status()
            for key in peaks:
                peaks[key] = max(peaks[key], status.get(key, 0.0))
            if done.wait(interval):
                return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        done.set()
        thread.join()
        status = memory_status()
        for key in peaks:
            peaks[key] = max(peaks[key], status.get(key, 0.0))


def write_test_cache(path, n_volumes: int, shape=(100, 124, 104), dtype="float16",
                     seed: int = 0) -> str:
    """A cache-like ``volumes.npy`` of ``n_volumes`` random volumes, appended row by row.

    For stream and memory measurements: written with plain file writes (no mapping), one volume
    in memory at a time, and dropped from the page cache at the end.
    """
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, shape).astype(np.float32)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": (int(n_volumes),) + tuple(shape)}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for i in range(int(n_volumes)):
            fh.write(np.clip(base + 0.05 * math.sin(i), 0, 1).astype(dtype).tobytes())
    _drop_page_cache(path)
    return str(path)


def main(argv=None) -> None:
    """``python -m brainage.distribute [N_VOLUMES]``: input-pipeline throughput of a cache."""
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(
        prog="python -m brainage.distribute",
        description="Input-pipeline throughput (volumes/s) per number of reader workers, on a "
                    "float16 test cache at the seed's crop 100x124x104 or on --cache.")
    parser.add_argument("n_volumes", nargs="?", type=int, default=240,
                        help="volumes in the test cache (2.6 MB each)")
    parser.add_argument("--cache", help="an existing volumes.npy to read instead")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--warm", action="store_true",
                        help="leave the file in the page cache (default: drop it first)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or os.path.join(tmp, "volumes.npy")
        if not args.cache:
            write_test_cache(cache, args.n_volumes)
        shape = np.load(cache, mmap_mode="r").shape
        with peak_memory() as peaks:
            results = measure_stream(cache, args.batch_size, args.workers, cold=not args.warm)
        print(json.dumps({"cache_mb": round(os.path.getsize(cache) / 2**20, 1),
                          "shape": list(shape), "batch_size": args.batch_size,
                          "results": results,
                          "peak_mb": {k: round(v, 1) for k, v in peaks.items()}}, indent=2))


if __name__ == "__main__":
    main()

"""Measuring the input pipeline: volumes/s read from a cache, and the memory it takes.

:func:`measure_stream` times the batches the training stage would read (volumes/s by 1, 2, 4 reader
workers), :func:`peak_memory` follows this process's resident memory while a block runs, and
:func:`write_test_cache` writes a cache-like file to measure on.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainage.config_values import ConfigReader, flag, integer
from brainage.errors import DataError


@dataclass(frozen=True)
class StreamSettings:
    """The ``distribute`` stage's config (``configs/distribute.yaml``), read once.

    ``cache`` None: measure a test cache of ``n_volumes`` volumes written for the purpose.
    """

    n_volumes: int
    cache: Path | None
    batch_size: int
    workers: tuple
    warm: bool

    @classmethod
    def from_cfg(cls, cfg) -> "StreamSettings":
        """Raises DataError for a malformed value, a missing cache file or a count that is not
        positive."""
        stage = ConfigReader(cfg, "", DataError)
        settings = cls(n_volumes=stage.value("n_volumes", integer, "a positive whole number"),
                       cache=Path(str(cfg.cache)) if cfg.cache else None,
                       batch_size=stage.value("batch_size", integer, "a positive whole number"),
                       workers=stage.value("workers", _worker_counts, "a positive whole number or a "
                                           "list of them, e.g. [1, 2, 4]"),
                       warm=stage.value("warm", flag, "true or false"))
        if settings.cache is not None and not settings.cache.is_file():
            raise DataError(f"cache={settings.cache}: no such file; pass the volumes.npy of a "
                            "data cache (data.cache.dir/<key>/volumes.npy)")
        counts = {"n_volumes": settings.n_volumes, "batch_size": settings.batch_size,
                  "workers": min(settings.workers, default=0)}
        for key, value in counts.items():
            if value < 1:
                raise DataError(f"{key}: expected positive numbers, got {cfg[key]}")
        return settings


def _worker_counts(value) -> tuple:
    """``workers``: a list of whole numbers, or one (``workers=2``)."""
    from omegaconf import OmegaConf

    values = value if OmegaConf.is_list(value) or isinstance(value, (list, tuple)) else [value]
    return tuple(integer(w) for w in values)


def stream_report(cache, batch_size: int, workers, cold: bool) -> dict:
    """:func:`measure_stream` of ``cache`` with its size, shape and the peak memory it took (MiB)."""
    shape = np.load(cache, mmap_mode="r").shape
    with peak_memory() as peaks:
        results = measure_stream(cache, batch_size, workers, cold=cold)
    return {"cache_mb": round(os.path.getsize(cache) / 2**20, 1), "shape": list(shape),
            "batch_size": int(batch_size), "results": results,
            "peak_mb": {k: round(v, 1) for k, v in peaks.items()}}


def measure_stream(cache, batch_size: int, workers, max_batches: int | None = None,
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
    # deferred: imports keras, which starts TensorFlow/JAX
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

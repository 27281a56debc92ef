"""How many workers the data stage uses, and an order-keeping thread map with bounded look-ahead.

A worker setting is ``null`` (every core this process may run on, ``os.sched_getaffinity``) or a
positive number. Results never depend on it: work is split per subject and results are taken in
input order.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from brainage.config_values import integer

WORKERS_EXPECTED = "null (every available core) or a positive number of workers"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which container limits respect)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1  # macOS and Windows have no affinity call


def worker_count(value) -> int | None:
    """A worker setting as read from a config: None (every available core) or a positive int."""
    if value is None:
        return None
    count = integer(value)
    if count < 1:
        raise ValueError(value)
    return count


def resolve_workers(setting: int | None, n_tasks: int) -> int:
    """Workers to start: ``setting`` (None = every available core), never more than ``n_tasks``."""
    wanted = available_cores() if setting is None else int(setting)
    return max(1, min(wanted, int(n_tasks)))


def ordered_map(function: Callable, items: Iterable, workers: int, look_ahead: int = 2) -> Iterator:
    """``map(function, items)`` on ``workers`` threads, results in input order.

    At most ``workers * look_ahead`` items are in flight, so a long input (thousands of volumes)
    never holds more than a few results in memory. An exception is raised when its item's turn
    comes, as the plain ``map`` would; items after it may have run already.

    Parameters
    ----------
    function : callable
        Should release the GIL for most of its work (file decompression, numpy) to gain from threads.
    items : iterable
    workers : int
        1 runs in the calling thread.
    look_ahead : int
        Items in flight per worker.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending = deque()
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= workers * look_ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # the caller stopped early (an error): do not run what it will never take
            for future in pending:
                future.cancel()

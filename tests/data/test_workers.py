"""Worker counts and the order-keeping thread map."""
import os
import threading
import time

import pytest

from brainage.data.workers import available_cores, ordered_map, resolve_workers


def test_resolve_workers():
    assert resolve_workers(None, 1000) == available_cores() >= 1
    assert resolve_workers(3, 1000) == 3
    assert resolve_workers(8, 2) == 2 and resolve_workers(None, 0) == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this platform")
def test_available_cores_follow_the_affinity(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 5, 7})
    assert available_cores() == 3


@pytest.mark.parametrize("workers", [1, 3])
def test_ordered_map_keeps_the_order_and_bounds_what_is_in_flight(workers):
    lock = threading.Lock()
    running, peak = [0], [0]

    def slow_square(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01 * (i % 3))  # later items often finish first
        with lock:
            running[0] -= 1
        return i * i

    submitted = []

    def items():
        for i in range(20):
            submitted.append(i)
            yield i

    results = []
    for value in ordered_map(slow_square, items(), workers, look_ahead=2):
        results.append(value)
        assert len(submitted) - len(results) <= workers * 2  # look-ahead bounded
    assert results == [i * i for i in range(20)]
    assert peak[0] <= workers


def test_ordered_map_raises_in_turn():
    def fail_on_three(i):
        if i == 3:
            raise ValueError("three")
        return i

    seen = []
    with pytest.raises(ValueError, match="three"):
        for value in ordered_map(fail_on_three, range(10), 2):
            seen.append(value)
    assert seen == [0, 1, 2]

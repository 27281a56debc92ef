"""Wall-clock and CPU timing of a call (warm-up, then repeats) and the process's peak memory."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import NamedTuple


class Timing(NamedTuple):
    """Seconds per call over the timed repeats: wall clock (median, fastest) and the median CPU
    time of the process (every thread). On a machine shared with other processes the wall clock
    grows with their load; CPU time much less so, when the libraries run one thread each."""

    median_s: float
    min_s: float
    cpu_s: float = float("nan")

    def ms_per_volume(self, batch: int) -> dict[str, float]:
        """``{"ms": median, "min_ms": fastest, "cpu_ms": median CPU}`` in ms per volume of a ``batch``."""
        return {"ms": 1000 * self.median_s / batch, "min_ms": 1000 * self.min_s / batch,
                "cpu_ms": 1000 * self.cpu_s / batch}


def time_call(fn: Callable[[], object], repeats: int) -> Timing:
    """Time ``fn()`` ``repeats`` times after one untimed warm-up call (tracing, compilation).

    ``fn`` must block until its result is ready (convert to NumPy): asynchronous backends
    would otherwise be timed while still computing.
    """
    fn()
    times, cpu = [], []
    for _ in range(int(repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return Timing(statistics.median(times), min(times), statistics.median(cpu))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB; Linux reports kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

"""time_call: one warm-up, then the timed repeats; per-volume conversion."""
import pytest

from brainage.benchmark.timing import Timing, peak_rss_mb, time_call


def test_time_call_warms_up_once_then_times_each_repeat():
    calls = []
    timing = time_call(lambda: calls.append(1), repeats=4)
    assert len(calls) == 5
    assert 0 <= timing.min_s <= timing.median_s and timing.cpu_s >= 0


def test_ms_per_volume_divides_by_the_batch():
    assert Timing(0.5, 0.25, 1.0).ms_per_volume(5) == {"ms": pytest.approx(100.0), "min_ms": pytest.approx(50.0),
                                                       "cpu_ms": pytest.approx(200.0)}


def test_peak_memory_is_plausible():
    assert 10 < peak_rss_mb() < 1e6

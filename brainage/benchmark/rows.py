"""One row of the benchmark: what is measured on one batch, each measure adding named keys.

A measure is a function ``(setup, x) -> dict`` of row entries; :data:`MEASURES` lists them in
column order. A new comparison (a peer library's time, evaluate's seconds per map) is one more
measure with its own keys, and the table shows its columns when rows carry them. Ratios of two
entries are computed last, from :data:`RATIOS`, for the rows that carry both.
"""
from __future__ import annotations

import numpy as np

from brainage.benchmark.network import BenchSetup
from brainage.benchmark.timing import peak_rss_mb, time_call
from brainage.benchmark.training_step import training_step_entries
from brainage.benchmark.zennit_peer import peer_entries

# (key, numerator, denominator) of per-volume times; ``zennit_speedup`` > 1: Zennit is slower.
RATIOS = (
    ("dtd_over_gradient", "dtd_ms", "gradient_ms"),
    ("dtd_over_forward", "dtd_ms", "forward_ms"),
    ("lrp_composite_over_forward", "lrp_composite_ms", "forward_ms"),
    ("zennit_speedup", "zennit_dtd_ms", "dtd_ms"),
    ("zennit_lrp_composite_speedup", "zennit_lrp_composite_ms", "lrp_composite_ms"),
    ("torch_gradient_speedup", "torch_gradient_ms", "gradient_ms"),
    ("torch_forward_speedup", "torch_forward_ms", "forward_ms"),
    # the same from CPU time: steadier than the wall clock beside other processes (threads=1)
    ("zennit_cpu_speedup", "zennit_dtd_cpu_ms", "dtd_cpu_ms"),
    ("zennit_lrp_composite_cpu_speedup", "zennit_lrp_composite_cpu_ms", "lrp_composite_cpu_ms"),
    ("torch_gradient_cpu_speedup", "torch_gradient_cpu_ms", "gradient_cpu_ms"),
    ("dtd_over_forward_cpu", "dtd_cpu_ms", "forward_cpu_ms"),
)


def forward_entries(setup: BenchSetup, x: np.ndarray) -> dict:
    """``forward_ms``/``forward_min_ms``: the compiled inference pass, per volume."""
    from keras import ops

    timing = time_call(lambda: ops.convert_to_numpy(setup.forward(x)), setup.settings.repeats)
    return {f"forward_{k}": v for k, v in timing.ms_per_volume(len(x)).items()}


def method_entries(setup: BenchSetup, x: np.ndarray) -> dict:
    """``<method>_ms``/``<method>_min_ms`` for every analyzer."""
    row = {}
    for name, analyzer in setup.analyzers.items():
        timing = time_call(lambda a=analyzer: a.explain(x), setup.settings.repeats)
        row.update({f"{name}_{k}": v for k, v in timing.ms_per_volume(len(x)).items()})
    return row


def peer_library_entries(setup: BenchSetup, x: np.ndarray) -> dict:
    """The peer's times, its maps' distance from ours and its conservation (none without a peer);
    timed right after ours, so that both see the same load."""
    if setup.peer is None:
        return {}
    return peer_entries(setup.peer, setup.analyzers, x, setup.settings.repeats)


def conservation_entries(setup: BenchSetup, x: np.ndarray) -> dict:
    """DTD's largest relative conservation error, at the output and over the layer trace."""
    explanation = setup.analyzers["dtd"].explain(x)
    return {
        "dtd_max_rel_error": float(np.nanmax(explanation.rel_error)),
        "dtd_max_trace_rel_error": float(
            max(np.nanmax(v) for v in explanation.trace_rel_error().values())),
    }


def training_entries(setup: BenchSetup, x: np.ndarray) -> dict:
    """A training step's ms per volume and volumes/s (none when ``train`` is off)."""
    if not setup.settings.train:
        return {}
    trained = setup.model if setup.settings.model_path is not None else None
    return training_step_entries(setup.settings, x, setup.n_classes, trained)


def memory_entries(setup: BenchSetup, x: np.ndarray) -> dict:
    """``peak_rss_mb``: the process's peak so far (it includes every earlier row)."""
    return {"peak_rss_mb": peak_rss_mb()}


MEASURES = (forward_entries, method_entries, peer_library_entries, conservation_entries,
            training_entries, memory_entries)


def ratio_entries(row: dict) -> dict:
    """Every ratio of :data:`RATIOS` whose two times the row carries."""
    return {key: row[num] / row[den] for key, num, den in RATIOS if num in row and den in row}


def measure_row(setup: BenchSetup, x: np.ndarray, measures=MEASURES) -> dict:
    """The row for batch ``x``: ``{"batch": len(x), **entries of every measure, **ratios}``."""
    row = {"batch": int(len(x))}
    for measure in measures:
        row.update(measure(setup, x))
    row.update(ratio_entries(row))
    return row

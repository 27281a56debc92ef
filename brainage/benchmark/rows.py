"""One row of the benchmark: what is measured on one batch, each measure adding named keys.

A measure is a function ``(setup, x) -> dict`` of row entries; :data:`MEASURES` lists them in
column order. A new comparison (a peer library's time, evaluate's seconds per map) is one more
measure with its own keys, and the table shows its columns when rows carry them.
"""
from __future__ import annotations

import numpy as np

from brainage.benchmark.network import BenchSetup
from brainage.benchmark.timing import peak_rss_mb, time_call
from brainage.benchmark.training_step import training_step_entries


def forward_entries(setup: BenchSetup, x: np.ndarray) -> dict:
    """``forward_ms``/``forward_min_ms``: the compiled inference pass, per volume."""
    from keras import ops

    timing = time_call(lambda: ops.convert_to_numpy(setup.forward(x)), setup.settings.repeats)
    return {f"forward_{k}": v for k, v in timing.ms_per_volume(len(x)).items()}


def method_entries(setup: BenchSetup, x: np.ndarray) -> dict:
    """``<method>_ms``/``<method>_min_ms`` for every analyzer, and ``dtd_over_gradient``."""
    row = {}
    for name, analyzer in setup.analyzers.items():
        timing = time_call(lambda a=analyzer: a.explain(x), setup.settings.repeats)
        row.update({f"{name}_{k}": v for k, v in timing.ms_per_volume(len(x)).items()})
    row["dtd_over_gradient"] = row["dtd_ms"] / row["gradient_ms"]
    return row


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
    return training_step_entries(setup.settings, x, setup.n_classes)


def memory_entries(setup: BenchSetup, x: np.ndarray) -> dict:
    """``peak_rss_mb``: the process's peak so far (it includes every earlier row)."""
    return {"peak_rss_mb": peak_rss_mb()}


MEASURES = (forward_entries, method_entries, conservation_entries, training_entries, memory_entries)


def measure_row(setup: BenchSetup, x: np.ndarray, measures=MEASURES) -> dict:
    """The row for batch ``x``: ``{"batch": len(x), **entries of every measure}``."""
    row = {"batch": int(len(x))}
    for measure in measures:
        row.update(measure(setup, x))
    return row

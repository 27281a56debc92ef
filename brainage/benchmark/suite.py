"""Run the whole benchmark: one row per batch size, with the machine and the set-up described."""
from __future__ import annotations

import os
import platform
import sys
from datetime import datetime

import numpy as np

from brainage.benchmark.environment import active_backend
from brainage.benchmark.network import build_setup
from brainage.benchmark.rows import MEASURES, measure_row
from brainage.benchmark.settings import BenchSettings


def machine_info() -> dict:
    """Platform, processor, CPU count and the Python and Keras versions."""
    import keras

    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "keras": keras.__version__,
    }


def _progress(row: dict) -> str:
    return f"batch {row['batch']}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "batch")


def run_benchmark(settings: BenchSettings, measures=MEASURES) -> dict:
    """Time every measure at every batch size on random input; returns the ``bench.json`` content.

    The environment (backend, devices) must already be configured; a backend other than the
    requested one raises :class:`~brainage.errors.BrainageError`. Prints one progress line per row.
    """
    backend = active_backend(settings.backend)
    setup = build_setup(settings)
    rng = np.random.default_rng(settings.seed)
    rows = []
    for batch in settings.batch_sizes:
        x = rng.uniform(0.0, 1.0, (batch, *settings.shape, 1)).astype("float32")
        rows.append(measure_row(setup, x, measures))
        print(_progress(rows[-1]), flush=True)
    return {
        "created": datetime.now().isoformat(timespec="seconds"),
        "backend": backend,
        "device": settings.device,
        "jit_compile": settings.jit_compile,
        "machine": machine_info(),
        "input_shape": [*settings.shape, 1],
        "n_parameters": int(setup.model.count_params()),
        "repeats": settings.repeats,
        "methods": list(setup.methods),
        "ig_steps": settings.ig_steps,
        "rows": rows,
    }

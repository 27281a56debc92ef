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
    load_at_start = os.getloadavg()
    setup = build_setup(settings)
    rng = np.random.default_rng(settings.seed)
    rows = []
    for batch in settings.batch_sizes:
        x = rng.uniform(0.0, 1.0, (batch, *setup.shape, 1)).astype("float32")
        rows.append(measure_row(setup, x, measures))
        print(_progress(rows[-1]), flush=True)
    return {
        "created": datetime.now().isoformat(timespec="seconds"),
        "backend": backend,
        "device": settings.device,
        "jit_compile": settings.jit_compile,
        "machine": machine_info(),
        # other processes' load: ratios from one run share it, absolute times do not survive it
        "load_average": {"start": list(load_at_start), "end": list(os.getloadavg())},
        "input_shape": [*setup.shape, 1],
        "model_path": None if settings.model_path is None else str(settings.model_path),
        "weights": "trained" if settings.model_path is not None else "random",
        "threads": settings.threads,
        "peer": None if setup.peer is None else {"name": settings.peer, **setup.peer.versions},
        "n_parameters": int(setup.model.count_params()),
        "repeats": settings.repeats,
        "methods": list(setup.methods),
        "ig_steps": settings.ig_steps,
        "rows": rows,
    }

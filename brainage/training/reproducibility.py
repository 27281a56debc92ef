"""Reproducible training: one seed for Keras, NumPy and Python, and deterministic kernels."""
from __future__ import annotations

import os
import sys


def request_determinism(enabled: bool) -> None:
    """Deterministic kernels where that is cheap: TF op determinism; XLA's flag on JAX GPUs.

    On JAX the flag must be set before JAX starts, so it only takes effect when training is the
    first thing the process does (the command line).
    """
    if not enabled:
        return
    if "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_gpu_deterministic_ops=true").strip()
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def seed_everything(seed: int) -> None:
    """Seed Keras's, NumPy's and Python's random generators (the one place a run is seeded)."""
    import keras

    keras.utils.set_random_seed(seed)

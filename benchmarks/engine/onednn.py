"""TensorFlow's oneDNN kernels on and off: forward and training step of the full network.

Not a test: ``python benchmarks/engine/onednn.py [--batch 4] [--repeats 3]`` runs the same
measurement in two fresh processes, ``TF_ENABLE_ONEDNN_OPTS=0`` and ``=1`` (the variable is read
when TensorFlow is imported), and prints seconds per volume for a compiled forward pass and an
Adam training step of ``brainage.model.build_model()`` (100 × 124 × 104, random weights), and the
ratio off ÷ on. Found on an AMD EPYC machine whose TensorFlow left oneDNN off by default.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def measure(batch: int, repeats: int) -> dict:
    """Seconds per volume: median of ``repeats`` calls after one warm-up call."""
    import keras
    import tensorflow as tf

    from brainage.model import build_model

    tf.config.experimental.enable_op_determinism()  # as training runs
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random((batch, 100, 124, 104, 1), dtype=np.float32)
    y = np.arange(batch) % 3
    forward = tf.function(lambda v: model(v, training=False))

    def per_volume(call) -> float:
        call()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) / batch)
        return float(np.median(times))

    return {"forward_s": per_volume(lambda: forward(x).numpy()),
            "train_step_s": per_volume(lambda: model.train_on_batch(x, y))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.batch, args.repeats)))
        return
    results = {}
    for flag in ("0", "1"):
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": flag, "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = subprocess.run([sys.executable, __file__, "--child", "--batch", str(args.batch),
                              "--repeats", str(args.repeats)], env=env, check=True,
                             capture_output=True, text=True)
        results[flag] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"batch {args.batch}, s/volume (median of {args.repeats})")
    print("                  oneDNN off   oneDNN on   off ÷ on")
    for key in ("forward_s", "train_step_s"):
        off, on = results["0"][key], results["1"][key]
        print(f"{key:<16} {off:11.3f} {on:11.3f} {off / on:10.1f}")


if __name__ == "__main__":
    main()

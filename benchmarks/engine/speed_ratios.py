"""Cost of each relevance method relative to the forward pass, at the product's full size.

Not a test: ``python benchmarks/engine/speed_ratios.py [--batches 1 2] [--repeats 3]`` builds
``brainage.model.build_model()`` (100 × 124 × 104, random weights), compiles every method once
(warm-up), then reports the median of ``repeats`` timed calls per method as a ratio to the
compiled forward pass of the same batch. Ratios, not absolute times, are comparable between
runs on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

# (label, method, parameters, target)
CASES = [
    ("gradient", "gradient", {}, "predicted"),
    ("dtd", "dtd", {}, "predicted"),
    ("dtd_seed", "dtd_seed", {}, "predicted"),
    ("dtd vs-mean", "dtd", {}, "predicted-vs-mean"),
    ("dtd vs-runnerup", "dtd", {}, "predicted-vs-runnerup"),
    ("dtd logodds", "dtd", {}, "predicted-logodds"),
    ("lrp_composite canonize", "lrp_composite", {"bn_mode": "canonize"}, "predicted"),
    ("clrp", "clrp", {}, "predicted"),
    ("sglrp", "sglrp", {}, "predicted"),
    ("deeplift", "deeplift", {"reference": 0.3}, "predicted"),
    ("dtd_reference", "dtd_reference", {"reference": 0.3}, "predicted"),
    ("smoothgrad (8 samples)", "smoothgrad", {"samples": 8, "batch_size": 8}, "predicted"),
]


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: compiles
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import keras
    from keras import ops

    from brainage.model import build_model
    from brainage.relevance import compile_function, make_analyzer

    keras.utils.set_random_seed(0)
    model = build_model()
    forward = compile_function(lambda v: model(v, training=False))
    analyzers = {label: (make_analyzer(model, name, **params), target) for label, name, params, target in CASES}
    rng = np.random.default_rng(0)
    for batch in args.batches:
        x = rng.uniform(0.0, 1.0, (batch, *model.input_shape[1:])).astype("float32")
        base = _median_seconds(lambda x=x: ops.convert_to_numpy(forward(x)), args.repeats)
        print(f"batch {batch}: forward {base * 1000:.0f} ms (median of {args.repeats})", flush=True)
        for label, (analyzer, target) in analyzers.items():
            seconds = _median_seconds(lambda a=analyzer, t=target, x=x: a.explain(x, target=t),
                                      args.repeats)
            print(f"  {label:24s} {seconds / base:6.2f} x forward", flush=True)


if __name__ == "__main__":
    main()

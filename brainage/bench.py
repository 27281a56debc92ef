"""Speed and conservation benchmark of the relevance engine on the full-size network.

Run ``python -m brainage.bench`` (or ``make bench``) with optional ``key=value`` overrides::

    python -m brainage.bench batch_sizes=[1,8] repeats=3 device=cpu
    python -m brainage.bench backend=jax device=gpu batch_sizes=[1,8,32]

Keys: ``batch_sizes`` (list), ``repeats`` (timed runs after one warm-up), ``device``
(``cpu`` hides accelerators, ``gpu``/``auto`` does not), ``backend`` (``tensorflow``/``jax``;
default: ``KERAS_BACKEND`` or TensorFlow), ``jit_compile`` (TensorFlow XLA), ``methods``
(list; default all), ``ig_steps``, ``shape`` (list, default ``[100,124,104]``), ``seed``,
``train`` (also time a training step), ``mixed_precision`` (time the training step in
``mixed_float16`` too; GPUs only — TensorFlow's CPU AvgPool3D has no float16 kernel),
``out_dir`` (default ``outputs/bench/<date>_<time>``).

Reports, per batch size: forward, gradient, DTD and every other method in ms per volume,
the ratio DTD ÷ gradient and the largest DTD conservation error; writes ``bench.json`` and
``bench.md`` to the output directory. Weights are random (Keras initialisation: zero biases,
identity BatchNormalization), which is what the timing needs.
"""

from __future__ import annotations

import ast
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

DEFAULTS = {
    "batch_sizes": [1, 8],
    "repeats": 3,
    "device": "cpu",
    "backend": None,
    "jit_compile": False,
    "methods": None,
    "ig_steps": 8,
    "shape": [100, 124, 104],
    "seed": 0,
    "train": True,
    "mixed_precision": False,
    "out_dir": None,
}


def parse_overrides(argv: list[str]) -> dict:
    """``key=value`` words to a config dict (values parsed as Python literals when possible)."""
    cfg = dict(DEFAULTS)
    for word in argv:
        if word in ("-h", "--help"):
            print(__doc__)
            raise SystemExit(0)
        key, sep, value = word.partition("=")
        key = key.lstrip("+")
        if not sep or key not in DEFAULTS:
            raise SystemExit(f"bench: expected key=value with key in {sorted(DEFAULTS)}, got {word!r}")
        try:
            cfg[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            if value.startswith("[") and value.endswith("]"):  # Hydra-style list of bare names
                cfg[key] = [v.strip() for v in value[1:-1].split(",") if v.strip()]
            else:
                cfg[key] = {"true": True, "false": False, "null": None}.get(value.lower(), value)
    return cfg


def _configure_environment(cfg: dict) -> None:
    # Must happen before Keras/TensorFlow/JAX are imported.
    if cfg["backend"]:
        os.environ["KERAS_BACKEND"] = str(cfg["backend"])
    if cfg["device"] == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _build_network(shape):
    from brainage.model import build_model

    return build_model(tuple(shape) + (1,))


def _time(fn, repeats):
    fn()  # warm-up: tracing and compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _train_step(cfg: dict, batch: int, x) -> dict:
    """Volumes/s of one optimisation step (Adam, SCCE on logits), fp32 and optionally mixed."""
    import keras
    import numpy as np

    out = {}
    y = np.arange(batch) % 3
    policies = ["float32"] + (["mixed_float16"] if cfg["mixed_precision"] else [])
    for policy in policies:
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = _build_network(cfg["shape"])
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            median, _ = _time(lambda: model.train_on_batch(x, y), cfg["repeats"])
        finally:
            keras.mixed_precision.set_global_policy("float32")
        tag = "train" if policy == "float32" else "train_mixed"
        out[f"{tag}_ms"] = 1000 * median / batch
        out[f"{tag}_volumes_per_s"] = batch / median
    return out


def run(cfg: dict) -> dict:
    """Run the benchmark; returns the results dict that is also written to disk."""
    _configure_environment(cfg)
    import keras
    import numpy as np
    from keras import ops

    from brainage.relevance import METHODS, make_analyzer
    from brainage.relevance._backend import compile_function

    keras.utils.set_random_seed(int(cfg["seed"]))
    model = _build_network(cfg["shape"])
    methods = list(cfg["methods"] or METHODS)
    for required in ("gradient", "dtd"):
        if required not in methods:
            methods.insert(0, required)
    params = {
        "gradcam": {"layer": "block4_conv_b"},
        "integrated_gradients": {"steps": int(cfg["ig_steps"])},
    }
    jit = bool(cfg["jit_compile"])
    analyzers = {m: make_analyzer(model, m, jit_compile=jit, **params.get(m, {})) for m in methods}
    forward = compile_function(lambda v: model(v, training=False), True, jit)
    rng = np.random.default_rng(int(cfg["seed"]))

    rows = []
    for batch in cfg["batch_sizes"]:
        batch = int(batch)
        x = rng.uniform(0.0, 1.0, (batch, *cfg["shape"], 1)).astype("float32")
        row = {"batch": batch}
        median, best = _time(lambda: ops.convert_to_numpy(forward(x)), cfg["repeats"])
        row["forward_ms"] = 1000 * median / batch
        row["forward_min_ms"] = 1000 * best / batch
        for name, analyzer in analyzers.items():
            median, best = _time(lambda a=analyzer: a.explain(x), cfg["repeats"])
            row[f"{name}_ms"] = 1000 * median / batch
            row[f"{name}_min_ms"] = 1000 * best / batch
        explanation = analyzers["dtd"].explain(x)
        row["dtd_over_gradient"] = row["dtd_ms"] / row["gradient_ms"]
        row["dtd_max_rel_error"] = float(np.nanmax(explanation.rel_error))
        row["dtd_max_trace_rel_error"] = float(
            max(np.nanmax(v) for v in explanation.trace_rel_error().values())
        )
        if cfg["train"]:
            row.update(_train_step(cfg, batch, x))
        row["peak_rss_mb"] = _peak_rss_mb()
        rows.append(row)
        print(f"batch {batch}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "batch"), flush=True)

    return {
        "created": datetime.now().isoformat(timespec="seconds"),
        "backend": keras.backend.backend(),
        "device": cfg["device"],
        "jit_compile": jit,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
            "keras": keras.__version__,
        },
        "input_shape": list(cfg["shape"]) + [1],
        "n_parameters": int(model.count_params()),
        "repeats": int(cfg["repeats"]),
        "methods": methods,
        "ig_steps": int(cfg["ig_steps"]),
        "rows": rows,
    }


def markdown_table(results: dict) -> str:
    """The results as a Markdown table (ms per volume, median of the timed runs)."""
    methods = results["methods"]
    trains = [k for k in ("train", "train_mixed") if f"{k}_ms" in results["rows"][0]]
    head = ["batch", "forward", *methods, "DTD ÷ gradient", "max DTD rel. error",
            *[f"{k} step" for k in trains], *[f"{k} vol/s" for k in trains], "peak RSS MB"]
    lines = [
        f"Backend {results['backend']}, device {results['device']} ({results['machine']['cpu_count']} CPUs), "
        f"jit_compile={results['jit_compile']}, input {tuple(results['input_shape'])}, "
        f"{results['n_parameters']:,} parameters; ms per volume, median of {results['repeats']} runs"
        + (f"; integrated_gradients with {results['ig_steps']} steps" if "integrated_gradients" in methods else ""),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in results["rows"]:
        cells = [str(row["batch"]), f"{row['forward_ms']:.0f}"]
        cells += [f"{row[f'{m}_ms']:.0f}" for m in methods]
        cells += [f"{row['dtd_over_gradient']:.2f}", f"{row['dtd_max_rel_error']:.1e}"]
        cells += [f"{row[f'{k}_ms']:.0f}" for k in trains]
        cells += [f"{row[f'{k}_volumes_per_s']:.1f}" for k in trains]
        cells += [f"{row['peak_rss_mb']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_overrides(sys.argv[1:] if argv is None else argv)
    out_dir = Path(cfg["out_dir"] or Path("outputs") / "bench" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    results = run(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(results, indent=2))
    table = markdown_table(results)
    (out_dir / "bench.md").write_text(table)
    print(table)
    print(f"written to {out_dir}")
    return results


if __name__ == "__main__":
    main()

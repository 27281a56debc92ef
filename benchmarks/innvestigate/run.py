"""iNNvestigate's deep Taylor decomposition against ours, on the same network, weights and inputs.

Run with the iNNvestigate environment's Python (TensorFlow 2.14, innvestigate 2.x; see
README.md), from the repository root::

    /tmp/innv/bin/python benchmarks/innvestigate/run.py --batch-sizes 1 4 --repeats 3

It first runs ``ours.py`` with the project's Python (``--ours-python``, default ``.venv/bin/python``):
that builds the network ``make bench`` times, exports it and times our DTD, gradient and forward
pass. Right after, in this process, it rebuilds the network in tf.keras 2.14 from the exported
weights (checking that the logits match ours), times iNNvestigate's ``deep_taylor.bounded``
(low 0, high 1) on the same inputs and prints, per batch size: both times per volume, the ratio,
each side's conservation error (|Σ R − explained output| / |output|) and how far the maps differ.
Both run on the CPU with the same intra-op thread count. Extra arguments are ``bench`` config
overrides passed to ``ours.py`` (``model_path=outputs/train/<run>/model.keras``, ``seed=1``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def run_ours(python: str, out: Path, args, overrides: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    command = [python, str(REPO / "benchmarks" / "innvestigate" / "ours.py"), str(out), *overrides,
               "--batch-sizes", *map(str, args.batch_sizes), "--repeats", str(args.repeats)]
    subprocess.run(command, check=True, env=env, cwd=REPO)
    return json.loads((out / "ours.json").read_text())


def rebuild(layers: list[dict], input_shape: list[int], weights):
    """The exported chain as a tf.keras 2.14 functional model with the exported weights."""
    from tensorflow import keras

    x = inputs = keras.Input(tuple(input_shape))
    for spec in layers:
        config = {k: v for k, v in spec.items() if k != "class"}
        layer = getattr(keras.layers, spec["class"])(**config)
        x = layer(x)
        count = sum(1 for key in weights.files if key.startswith(spec["name"] + "/"))
        if count:
            layer.set_weights([weights[f"{spec['name']}/{i}"] for i in range(count)])
    return keras.Model(inputs, x)


def time_per_volume(fn, batch: int, repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU ms per volume of ``fn()`` over ``repeats`` runs after one warm-up
    (as ``brainage.benchmark.timing.time_call``)."""
    fn()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * float(np.median(times)) / batch, 1000 * float(np.median(cpu)) / batch


def relative_l1(ours, theirs) -> float:
    ours, theirs = ours.astype(np.float64), theirs.astype(np.float64)
    return float(np.abs(ours - theirs).sum() / np.abs(ours).sum())


def innvestigate_row(model, data, repeats: int) -> dict:
    """iNNvestigate's DTD on one batch: time, conservation, distance of its maps from ours."""
    import innvestigate

    x = data["x"]
    logits = model.predict(x, verbose=0)
    analyzer = innvestigate.create_analyzer("deep_taylor.bounded", model, low=0.0, high=1.0)
    ms, cpu_ms = time_per_volume(lambda: analyzer.analyze(x), len(x), repeats)
    maps = analyzer.analyze(x)
    # it explains the largest output after a ReLU it adds (DTD wants positive outputs)
    explained = np.maximum(logits.max(axis=1), 0.0).astype(np.float64)
    sums = maps.reshape(len(x), -1).astype(np.float64).sum(1)
    return {"ms": ms, "cpu_ms": cpu_ms, "logits_max_abs_diff": float(np.abs(logits.max(1) - data["outputs"]).max()),
            "relevance_sum": sums.tolist(), "explained_output": explained.tolist(),
            "max_rel_error": float(np.max(np.abs(sums - explained) / np.abs(explained))),
            "maps_rel_l1_from_ours": relative_l1(data["maps"], maps)}


def print_table(ours: dict, rows: list[dict]) -> None:
    print(f"\nSame network ({ours['weights']} weights, input {ours['input_shape']}), CPU, "
          f"{ours['threads']} intra-op threads; ms per volume, median; conservation = "
          "max |Σ R − output| / |output|")
    print("| batch | iNNvestigate ÷ ours (DTD) | same, CPU time | DTD ours | DTD iNNvestigate "
          "| gradient ours | forward ours | DTD ÷ forward (ours) | conservation ours "
          "| conservation iNNvestigate | maps rel. L1 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        t, cpu = row["ours"]["times_ms"], row["ours"]["cpu_ms"]
        print(f"| {row['batch']} | {row['innvestigate']['ms'] / t['dtd']:.1f} "
              f"| {row['innvestigate']['cpu_ms'] / cpu['dtd']:.1f} | {t['dtd']:.0f} "
              f"| {row['innvestigate']['ms']:.0f} | {t['gradient']:.0f} | {t['forward']:.0f} "
              f"| {t['dtd'] / t['forward']:.2f} | {row['ours']['max_rel_error']:.1e} "
              f"| {row['innvestigate']['max_rel_error']:.1e} | {row['innvestigate']['maps_rel_l1_from_ours']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ours-python", default=str(REPO / ".venv" / "bin" / "python"))
    parser.add_argument("--out", type=Path, help="keep the exchanged files and results.json here")
    parser.add_argument("overrides", nargs="*", help="bench config overrides for ours.py")
    args = parser.parse_intermixed_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="innvestigate-bench-"))
    ours = run_ours(args.ours_python, out, args, args.overrides)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(ours["threads"])  # before TensorFlow starts
    # the oneDNN kernels our side uses (import brainage turns them on): TensorFlow 2.14 leaves
    # them off on some CPUs (AMD EPYC here), which would slow iNNvestigate's convolutions ~5x
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()  # iNNvestigate 2 builds graph-mode analyzers
    model = rebuild(ours["layers"], ours["input_shape"], np.load(out / "network.npz"))
    rows = [{"batch": row["batch"], "ours": row,
             "innvestigate": innvestigate_row(model, np.load(out / f"batch{row['batch']}.npz"), args.repeats)}
            for row in ours["rows"]]
    from importlib.metadata import version

    # innvestigate.__version__ lags behind the release (2.1.2 reports 2.0.1): ask the installer
    results = {"tensorflow": tf.__version__, "innvestigate": version("innvestigate"),
               "python": sys.version.split()[0], "ours": {k: v for k, v in ours.items() if k != "rows"},
               "tf_enable_onednn_opts": os.environ["TF_ENABLE_ONEDNN_OPTS"],
               "load_average_end": os.getloadavg(), "rows": rows}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print_table(ours, rows)
    print(f"\niNNvestigate {results['innvestigate']} on TensorFlow {results['tensorflow']} "
          f"(TF_ENABLE_ONEDNN_OPTS={results['tf_enable_onednn_opts']}); "
          f"results in {out / 'results.json'}")


if __name__ == "__main__":
    main()

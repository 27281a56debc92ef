"""Our side of the iNNvestigate comparison; run by ``run.py`` with the project's Python.

Builds the network ``make bench`` times (the ``bench`` config: the ``model`` group's network with
random weights, biases and BatchNormalization statistics, or ``model_path``), writes it as a
layer list with its weights (``network.npz``) that TensorFlow 2.14's tf.keras can rebuild, and
for each batch size writes the inputs, our DTD maps and our times per volume (``ours.json``).

    .venv/bin/python benchmarks/innvestigate/ours.py OUT_DIR --batch-sizes 1 4 --repeats 3 [bench overrides...]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def bench_settings(overrides: list[str]):
    """The ``bench`` config with ``overrides`` (e.g. ``model_path=…``, ``seed=1``), checked."""
    from hydra import compose, initialize_config_dir

    from brainage.benchmark.settings import BenchSettings

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return BenchSettings.from_cfg(compose("bench", overrides=overrides))


LAYER_KEYS = {  # what tf.keras 2.14 needs to rebuild each layer of the chain
    "Conv3D": ("filters", "kernel_size", "strides", "padding", "activation", "use_bias"),
    "BatchNormalization": ("epsilon", "center", "scale"),
    "ReLU": (),
    "AveragePooling3D": ("pool_size", "strides", "padding"),
    "Flatten": (),
    "Dense": ("units", "activation", "use_bias"),
}


def export_network(model, path: Path) -> list[dict]:
    """Each layer's class, name and configuration, and every weight, to ``path`` (npz)."""
    layers, weights = [], {}
    for layer in model.layers[1:]:  # the chain after the input
        kind = type(layer).__name__
        if kind not in LAYER_KEYS:
            raise SystemExit(f"layer {layer.name!r} ({kind}) cannot be rebuilt in tf.keras 2.14 here")
        config = layer.get_config()
        layers.append({"class": kind, "name": layer.name, **{k: config[k] for k in LAYER_KEYS[kind]}})
        for i, array in enumerate(layer.get_weights()):
            weights[f"{layer.name}/{i}"] = array
    np.savez(path, **weights)
    return layers


def time_ours(setup_model, x: np.ndarray, repeats: int) -> dict:
    """Our DTD, gradient and forward pass on batch ``x``: ms per volume and DTD's maps."""
    from keras import ops

    from brainage.benchmark.timing import time_call
    from brainage.relevance import compile_function, make_analyzer

    dtd, gradient = make_analyzer(setup_model, "dtd"), make_analyzer(setup_model, "gradient")
    forward = compile_function(lambda v: setup_model(v, training=False), True, False)
    timings = {name: time_call(fn, repeats).ms_per_volume(len(x)) for name, fn in (
        ("dtd", lambda: dtd.explain(x)), ("gradient", lambda: gradient.explain(x)),
        ("forward", lambda: ops.convert_to_numpy(forward(x))))}
    explanation = dtd.explain(x)
    return {"times_ms": {k: t["ms"] for k, t in timings.items()},
            "cpu_ms": {k: t["cpu_ms"] for k, t in timings.items()},
            "maps": explanation.maps, "outputs": explanation.outputs,
            "max_rel_error": explanation.max_rel_error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="bench config overrides (model_path=…, seed=…)")
    args = parser.parse_intermixed_args()
    settings = bench_settings(args.overrides)
    from brainage.benchmark.environment import configure_environment

    configure_environment("tensorflow", "cpu", settings.threads)
    import keras

    from brainage.benchmark.network import timed_model

    keras.utils.set_random_seed(settings.seed)
    model = timed_model(settings)
    args.out.mkdir(parents=True, exist_ok=True)
    layers = export_network(model, args.out / "network.npz")
    shape = [int(s) for s in model.input_shape[1:]]
    rng, rows = np.random.default_rng(settings.seed), []
    for batch in args.batch_sizes:
        x = rng.uniform(0.0, 1.0, (batch, *shape)).astype("float32")
        ours = time_ours(model, x, args.repeats)
        np.savez(args.out / f"batch{batch}.npz", x=x, maps=ours["maps"], outputs=ours["outputs"])
        rows.append({"batch": batch, "times_ms": ours["times_ms"], "cpu_ms": ours["cpu_ms"],
                     "max_rel_error": ours["max_rel_error"]})
    (args.out / "ours.json").write_text(json.dumps({
        "layers": layers, "input_shape": shape, "threads": settings.threads, "keras": keras.__version__,
        "weights": "trained" if settings.model_path else "random", "load_average": os.getloadavg(),
        "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

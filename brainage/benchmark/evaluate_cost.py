"""Evaluate's cost beside the forward passes it needs: is region perturbation as fast as the network?

Region perturbation of one map needs ``steps + 1`` forward passes (the intact input and one per
step). :func:`measure_evaluate_cost` times the evaluate stage's own perturbation
(:func:`brainage.faithfulness.perturbation.region_perturbation` through its compiled logit function)
on random maps and, in the same run with the same compiled model and batch size, the bare forward
pass; the ratio ``perturbation time ÷ (forward passes × forward time)`` is the overhead (issue #17's
goal: ≤ 1.3). :func:`evaluate_cost_entries` is the same measure as a ``bench`` row measure
(``(setup, x) -> dict``). The perturbation settings are those of ``configs/evaluate.yaml``.

Run alone on the full-size network (random weights)::

    python -m brainage.benchmark.evaluate_cost --subjects 4 --repeats 3
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from brainage.faithfulness.perturbation import logit_function, make_baseline, random_maps, region_perturbation
from brainage.faithfulness.settings import PerturbationSettings

EVALUATE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "evaluate.yaml"


def perturbation_settings(**overrides):
    """The ``perturbation:`` block of ``configs/evaluate.yaml`` (with ``overrides``), checked."""
    from omegaconf import OmegaConf


    block = OmegaConf.load(EVALUATE_CONFIG).perturbation
    return PerturbationSettings.from_cfg(OmegaConf.merge(block, overrides))


def measure_evaluate_cost(model, x: np.ndarray, perturbation=None, repeats: int = 1,
                          seed: int = 0) -> dict:
    """Seconds per map of region perturbation and the bare forward cost it needs, same run.

    The bare forward pass (the same compiled function, a full batch) is timed ``repeats`` times
    just before and just after the perturbation (median), so a machine whose load drifts is
    sampled around it; the time inside the perturbation's own forward calls is recorded too. Wall
    and CPU time (all threads of this process) are both kept: on a shared machine the CPU-time
    ratio is the steadier estimate of what a quiet machine would show.

    Parameters
    ----------
    model : keras.Model
    x : ndarray (n, *spatial, channels)
        The subjects; each gets a random map (the cost does not depend on the map).
    perturbation : PerturbationSettings, optional
        Default: ``configs/evaluate.yaml``'s (8³ patches, 10 steps of 16, batches of 11).
    repeats : int
        Timed forward calls before and after (after one untimed warm-up of each batch shape).

    Returns
    -------
    dict
        ``perturbation_s_per_map`` (wall) and ``perturbation_cpu_s_per_map``;
        ``perturbation_forward_ms`` / ``perturbation_forward_cpu_ms`` (bare forward per volume at
        the perturbation's batch size); ``perturbation_forward_passes`` (per map);
        ``perturbation_overhead`` / ``perturbation_overhead_cpu`` = per map ÷ (passes × forward);
        ``perturbation_inline_overhead`` = perturbation time ÷ time inside its forward calls;
        ``perturbation_outside_s_per_map``: wall seconds per map spent outside the forward calls;
        ``perturbation_batch``.
    """
    p = perturbation or perturbation_settings()
    x = np.asarray(x, dtype=np.float32)
    predict = logit_function(model, p.batch_size)
    passes = p.steps + 1
    batch = min(p.batch_size, len(x) * passes)
    full = np.repeat(x[:1], batch, axis=0)
    rest = (len(x) * passes) % batch
    predict(full[:rest] if rest else full)  # trace the last batch's shape too, untimed
    predict(full)
    bare = [_timed(predict, full) for _ in range(max(int(repeats), 1))]
    total, inside = _timed_perturbation(predict, x, p, seed)
    bare += [_timed(predict, full) for _ in range(max(int(repeats), 1))]
    forward = np.median(np.array(bare), axis=0) / batch  # (wall, cpu) per volume
    per_map = total / len(x)
    return {"perturbation_s_per_map": per_map[0], "perturbation_cpu_s_per_map": per_map[1],
            "perturbation_forward_ms": 1000 * forward[0],
            "perturbation_forward_cpu_ms": 1000 * forward[1],
            "perturbation_forward_passes": passes, "perturbation_batch": batch,
            "perturbation_overhead": per_map[0] / (passes * forward[0]),
            "perturbation_overhead_cpu": per_map[1] / (passes * forward[1]),
            "perturbation_inline_overhead": total[0] / inside[0],
            "perturbation_outside_s_per_map": (total[0] - inside[0]) / len(x)}


def _timed(fn, *args) -> np.ndarray:
    """``(wall, cpu)`` seconds of one call of ``fn(*args)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return np.array([time.perf_counter() - wall, time.process_time() - cpu])


def _timed_perturbation(predict, x, p, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(wall, cpu)`` of region perturbation of ``x`` by random maps, and of its forward calls."""
    maps = random_maps(x.shape, seed)
    baseline = make_baseline(x, p.baseline, x.mean(axis=0), p.blur_sigma)
    inside = np.zeros(2)

    def timed_predict(inputs):
        nonlocal inside
        wall, cpu = time.perf_counter(), time.process_time()
        logits = predict(inputs)
        inside = inside + [time.perf_counter() - wall, time.process_time() - cpu]
        return logits

    total = _timed(lambda: region_perturbation(
        timed_predict, x, maps, np.zeros(len(x), np.int64), baseline, p.patch, p.steps,
        p.patches_per_step, batch_size=p.batch_size))
    return total, inside


def evaluate_cost_entries(setup, x: np.ndarray) -> dict:
    """The ``bench`` row measure: :func:`measure_evaluate_cost` on the benchmark's network and
    batch (one map per volume of ``x``)."""
    return measure_evaluate_cost(setup.model, x, repeats=setup.settings.repeats,
                                 seed=setup.settings.seed)


def main(argv=None) -> dict:
    """Command line: the full-size network with random weights, random subjects; prints JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="default: evaluate.yaml's")
    parser.add_argument("--shape", type=int, nargs=3, default=[100, 124, 104])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64],
                        help="filters per block (the seed's network by default)")
    args = parser.parse_args(argv)
    import keras

    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model(tuple(args.shape) + (1,), widths=tuple(args.widths))
    x = np.random.default_rng(0).uniform(0, 1, (args.subjects, *args.shape, 1)).astype("float32")
    overrides = {"steps": args.steps} if args.steps else {}
    result = measure_evaluate_cost(model, x, perturbation_settings(**overrides), args.repeats)
    print(json.dumps({"subjects": args.subjects, "shape": args.shape, "widths": args.widths,
                      **result}, indent=2))
    return result


if __name__ == "__main__":
    main()

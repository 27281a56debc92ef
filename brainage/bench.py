"""Speed and conservation benchmark of the relevance engine on the full-size network.

Run ``python -m brainage.bench`` (or ``make bench``) with Hydra overrides (``configs/bench.yaml``
lists and explains every key)::

    python -m brainage.bench batch_sizes=[1,8] repeats=3 device=cpu
    python -m brainage.bench backend=jax device=gpu batch_sizes=[1,8,32]
    python -m brainage.bench methods=[dtd,gradient] mixed_precision=true

Reports, per batch size: forward, gradient, DTD and every other method in ms per volume, the
ratio DTD ÷ gradient, the largest DTD conservation error, a training step and peak memory; writes
``bench.json`` and ``bench.md`` to ``outputs/bench/<date>_<time>/``. Weights are random (Keras
initialisation: zero biases, identity BatchNormalization), which is what the timing needs.
"""
from __future__ import annotations

import json
from pathlib import Path

import hydra

from brainage.benchmark.environment import configure_environment
from brainage.benchmark.settings import BenchSettings


def bench(cfg, run_dir) -> dict:
    """Run the benchmark of ``cfg`` and write ``bench.json`` and ``bench.md`` to ``run_dir``.

    The backend and device are set in the environment first, so that they take effect when Keras
    is imported — in a process that has not imported it yet (the command line). Returns the
    results written to ``bench.json``.
    """
    settings = BenchSettings.from_cfg(cfg)
    configure_environment(settings.backend, settings.device)
    from brainage.benchmark.suite import run_benchmark
    from brainage.benchmark.table import markdown_table

    results = run_benchmark(settings)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "bench.json").write_text(json.dumps(results, indent=2))
    table = markdown_table(results)
    (run_dir / "bench.md").write_text(table)
    print(table)
    print(f"written to {run_dir}")
    return results


@hydra.main(version_base="1.3", config_path="../configs", config_name="bench")
def main(cfg) -> None:
    from brainage.runs import run_stage

    run_stage(bench, cfg)


if __name__ == "__main__":
    main()

"""Speed and conservation benchmark of the relevance engine on the full-size network.

Run ``python -m brainage.bench`` (or ``make bench``) with Hydra overrides (``configs/bench.yaml``
lists and explains every key)::

    python -m brainage.bench batch_sizes=[1,8] repeats=3 device=cpu
    python -m brainage.bench backend=jax device=gpu batch_sizes=[1,8,32]
    python -m brainage.bench methods=[dtd,gradient] mixed_precision=true
    python -m brainage.bench peer=zennit batch_sizes=[1,2,8]     # pip install -e ".[peer]"
    python -m brainage.bench peer=zennit model_path=outputs/train/<run>/model.keras

Reports, per batch size: forward, gradient, DTD and every other method in ms per volume, the
ratios DTD ÷ gradient and DTD ÷ forward, the largest DTD conservation error, a training step and
peak memory; writes ``bench.json`` and ``bench.md`` to ``outputs/bench/<date>_<time>/``. Weights
are random, with random biases and BatchNormalization statistics, unless ``model_path`` names a
trained model. With ``peer=zennit`` the same network runs in PyTorch under Zennit's DTD and LRP
composite too: its times, the gradient's and the ratios (``zennit_speedup``) join each row, and
maps that differ from ours by more than ``peer_tolerance`` (relative L1) end the run with exit 2
after the results are written — unless float32 cannot resolve the map that finely (Zennit's own
float32 and float64 maps differ by more), which is reported as a warning.
"""
from __future__ import annotations

import json
from pathlib import Path

from brainage.benchmark.environment import configure_environment
from brainage.benchmark.settings import BenchSettings
from brainage.benchmark.suite import run_benchmark
from brainage.benchmark.table import markdown_table
from brainage.benchmark.zennit_peer import agreement, import_zennit
from brainage.errors import BrainageError
from brainage.runs import hydra_entry, run_stage


def bench(cfg, run_dir) -> dict:
    """Run the benchmark of ``cfg`` and write ``bench.json`` and ``bench.md`` to ``run_dir``.

    The backend, device and threads are set in the environment first, so that they take effect
    when Keras is imported — in a process that has not imported it yet (the command line).
    Returns the results written to ``bench.json``.

    Raises
    ------
    BrainageError
        After writing, when a peer's maps differ from ours by more than ``peer_tolerance``
        where float32 resolves them to ``peer_tolerance``.
    """
    settings = BenchSettings.from_cfg(cfg)
    configure_environment(settings.backend, settings.device, settings.threads)
    if settings.peer:
        import_zennit()  # before Keras imports TensorFlow: see import_zennit

    results = run_benchmark(settings)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "bench.json").write_text(json.dumps(results, indent=2))
    table = markdown_table(results)
    (run_dir / "bench.md").write_text(table)
    print(table)
    print(f"written to {run_dir}")
    differences, unresolved = agreement(results["rows"], settings.peer_tolerance)
    for line in unresolved:
        print(f"warning: {line}")
    if differences:
        raise BrainageError("bench: " + "; ".join(differences))
    return results


def _main(cfg, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_stage(bench, cfg, run_dir=run_dir)


main = hydra_entry(_main, "bench")


if __name__ == "__main__":
    main()

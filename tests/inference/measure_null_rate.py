"""Measure the infer stage's null rate and sensitivity on two cheap explain runs.

    PYTHONPATH=. python -m tests.inference.measure_null_rate OUT [--shuffles 100]

1. ``synthetic``: the tiny 7 × 8 × 9 explain run of :mod:`tests.inference.synthetic_runs` (a planted
   region, a GM-driven region, two unchanged regions; method ``gradient`` is pure noise);
2. ``trained``: the tests' tiny trained CNN (``tests.builders.build_train_run``: 24 subjects on
   11 × 12 × 13, an ageing core region) explained by DTD and gradient × input for all subjects.

Each is tested with the stage's defaults (``bin2_vs_bin0``, 1000 voxel / 5000 region permutations,
``fwe_scope=run``) and ``null_check.shuffles``; the null rates (share of shuffles with any
FWE-significant voxel or region, at the run's level and, from the same shuffles, at 0.05 per family)
and the sensitivity (ageing regions found, control regions found) are printed and written under OUT. On a real explain run the same numbers come from
``python -m brainage.infer explain_dir=<run> null_check.shuffles=20``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _trained_explain_run(base: Path) -> Path:
    from omegaconf import OmegaConf

    from brainage.explain import explain
    from tests.builders import build_train_run, compose_explain

    train = build_train_run(base)
    truth = base / "cohort" / "ground_truth"
    truth.mkdir()
    pd.DataFrame({"name": ["Left_Core", "Top"], "role": ["ageing", "control"]}).to_csv(
        truth / "regions.csv", index=False)
    cfg = compose_explain(train, "explainer=[dtd,gradient_x_input]", "subjects=all")
    out = base / "explain"
    explain(cfg, out)
    (out / ".hydra").mkdir()
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")
    return out


def measure(name: str, explain_dir: Path, out: Path, shuffles: int, *overrides) -> dict:
    """Run the stage with the null check; print and return its rates and sensitivity."""
    from brainage.infer import infer
    from tests.builders import compose_stage

    args = [f"explain_dir={explain_dir}", f"null_check.shuffles={shuffles}", *overrides]
    print(f"\n== {name}: python -m brainage.infer {' '.join(args)}")
    summary = infer(compose_stage("infer", *args), out)
    from brainage.inference.null_check import null_rates

    rates = pd.read_csv(out / "null_rates.csv")
    print(f"null rates at the run's FWE level {summary['alpha_fwe']:.4g} "
          f"({summary['n_families']} families):")
    print(rates.to_string(index=False))
    per_family = null_rates(pd.read_csv(out / "null_check.csv"), summary["alpha"])
    print(f"the same shuffles, each family at {summary['alpha']:g} (fwe_scope=family):")
    print(per_family.to_string(index=False))
    if (out / "sensitivity.csv").is_file():
        print(pd.read_csv(out / "sensitivity.csv").to_string(index=False))
    print(f"observed: {summary['regions']}  ({summary['seconds']} s)")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--shuffles", type=int, default=100)
    args = parser.parse_args()
    from tests.inference.synthetic_runs import build_explain_run

    synthetic = build_explain_run(args.out / "synthetic")["explain"]
    measure("synthetic, share", synthetic, args.out / "synthetic_share", args.shuffles)
    measure("synthetic, raw", synthetic, args.out / "synthetic_raw", args.shuffles, "measure=raw")
    trained = _trained_explain_run(args.out / "trained")
    measure("trained CNN, share", trained, args.out / "trained_share", args.shuffles)
    measure("trained CNN, raw", trained, args.out / "trained_raw", args.shuffles, "measure=raw")


if __name__ == "__main__":
    main()

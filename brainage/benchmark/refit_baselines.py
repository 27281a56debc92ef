"""Refit a finished run's baselines on its own split with the code as it is now.

A run's ``metrics.json`` holds the baselines fitted when it trained. When a baseline changes (a
fix, another feature set), this fits them again on the identical split, each fold of a
cross-validation on its own, and prints them beside the network's test score and the recorded
baselines, so that the comparison stays on one split without training the network again:

    python -m brainage.benchmark.refit_baselines --train-dir outputs/train/<run> [--out refit.csv]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def refit_run(train_dir: Path) -> list[dict]:
    """One row per baseline of the run: the network's test score, the recorded and the refit."""
    from brainage.trained.cohort import training_data
    from brainage.trained.run import TrainRunRequest, resolve_train_run
    from brainage.training.baselines.settings import BaselineSettings
    from brainage.training.baselines.suite import fit_baselines

    train = resolve_train_run(TrainRunRequest(train_dir=Path(train_dir), model_path=None,
                                              outputs_dir=Path("outputs"), data={},
                                              subjects="all"))
    metrics = json.loads((train.dir / "metrics.json").read_text())
    task = str(train.cfg.model.get("task") or "classification")
    score = "mae" if task == "regression" else "test_accuracy"
    refit = fit_baselines(BaselineSettings.from_cfg(train.cfg.trainer.baselines),
                          training_data(train, {}, progress=False), task)
    recorded = metrics.get("baselines") or {}
    return [{"run": str(train.dir), "score": score, "network": metrics.get(score),
             "baseline": name, "recorded": (recorded.get(name) or {}).get(score),
             "refit": entry.get(score), "penalty": entry["penalty"]["value"],
             "penalty_at_grid_edge": entry["penalty"]["at_grid_edge"]}
            for name, entry in refit.items()]


def run_dirs(train_dir: Path) -> list[Path]:
    """The run itself, or a cross-validation's or ensemble's runs (their own splits)."""
    from brainage.ensemble.members import member_dirs, stands_for_runs

    return list(member_dirs([train_dir])) if stands_for_runs(train_dir) else [Path(train_dir)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-dir", required=True, type=Path,
                        help="a finished training run, cross-validation or ensemble run")
    parser.add_argument("--out", type=Path, default=None, help="write the table here (CSV)")
    args = parser.parse_args(argv)
    table = pd.DataFrame([row for run in run_dirs(args.train_dir) for row in refit_run(run)])
    if args.out:
        table.to_csv(args.out, index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    means = table.groupby("baseline")[["network", "recorded", "refit"]].mean()
    print("\nmean over runs:\n" + means.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

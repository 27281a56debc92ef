"""Does region perturbation need 20 steps of 8 patches, or do 10 steps of 16 score the same?

The evaluate stage's perturbation phase is one forward pass per (pair, subject, step). This script
explains the subjects once (the default methods, the random floor included), then scores the same
maps with several ``steps x patches_per_step`` settings that remove the same 160 patches, and
prints, per setting, each pair's AOPC (mean ± SE), its rank, whether it passes the scorecard's
AOPC check (``aopc + aopc_within_se · SE ≥ best``), and the phase's time.

    python benchmarks/evaluate/perturbation_granularity.py train_dir=outputs/train/<run> \
        [settings=20x8,10x16] [any evaluate override, e.g. subjects_limit=12]
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from brainage.data.reference_images import with_reference_images
from brainage.faithfulness.evaluation import EvaluateSettings
from brainage.faithfulness.inputs import prepare_inputs, spread_over_bins
from brainage.faithfulness.scoring import RANDOM, Evaluation, map_phase, perturbation_phase
from brainage.faithfulness.targets import ScoredPair, scored_pairs
from brainage.trained import load_analyzers, load_model, open_train_run

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _config(overrides):
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose("evaluate", overrides=overrides)


def _aopc_table(evaluation: Evaluation, within_se: float) -> pd.DataFrame:
    rows = pd.concat(evaluation.aopc)
    table = rows.groupby(["method", "target"], sort=False)["aopc"].agg(["mean", "sem", "count"])
    best = table.loc[[k for k in table.index if k[0] != RANDOM], "mean"].max()
    table["passes"] = table["mean"] + within_se * table["sem"] >= best
    table["rank"] = table["mean"].rank(ascending=False).astype(int)
    return table


def main(argv: list[str]) -> None:
    grids = [(20, 8), (10, 16)]
    overrides = []
    for arg in argv:
        if arg.startswith("settings="):
            grids = [tuple(int(v) for v in s.split("x")) for s in arg.split("=", 1)[1].split(",")]
        else:
            overrides.append(arg)
    cfg = _config(overrides)
    settings = EvaluateSettings.from_cfg(cfg)
    scoring, run = settings.scoring, settings.runs[0]
    opened = open_train_run(run, scoring.progress)
    model = load_model(opened.train, opened.prep.input_shape)
    methods = with_reference_images(settings.methods, opened.prep)
    analyzers = load_analyzers(model, methods)
    rows = spread_over_bins(opened.rows, opened.prep.labels()[opened.rows], scoring.subjects_limit)
    inputs = prepare_inputs(model, opened.prep, rows, scoring,
                            opened.train.data_config(run.data).get("root"))
    pairs = scored_pairs(analyzers, scoring.targets, scoring.pairs)
    pairs += [ScoredPair(RANDOM, mode) for mode in scoring.targets]
    maps = Evaluation(pairs, inputs)
    scores = map_phase(maps, analyzers, scoring)
    tables = {}
    for steps, per_step in grids:
        variant = dataclasses.replace(scoring, perturbation=dataclasses.replace(
            scoring.perturbation, steps=steps, patches_per_step=per_step))
        evaluation = dataclasses.replace(maps, aopc=[], curves=[], phase_seconds={})
        t = time.perf_counter()
        perturbation_phase(evaluation, scores, variant)
        print(f"{steps} steps x {per_step} patches: {time.perf_counter() - t:.0f} s", flush=True)
        tables[f"{steps}x{per_step}"] = _aopc_table(evaluation, scoring.scorecard.aopc_within_se)
    both = pd.concat(tables, axis=1)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(both.round(3).to_string())
    means = [t["mean"].to_numpy() for t in tables.values()]
    for name, m in zip(list(tables)[1:], means[1:]):
        print(f"{name} against {list(tables)[0]}: Pearson r of the pairs' AOPC "
              f"{np.corrcoef(means[0], m)[0, 1]:.3f}; same pass/fail on "
              f"{(tables[name]['passes'] == next(iter(tables.values()))['passes']).sum()} of "
              f"{len(m)} pairs")


if __name__ == "__main__":
    main(sys.argv[1:])

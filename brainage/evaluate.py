"""The evaluate stage: are the explanations faithful to the network?

``python -m brainage.evaluate`` (``make evaluate``) scores every selected explanation method, plus a
random map as the floor, on a training run (the newest unless ``train_dir=…`` or ``model_path=…``):

* region perturbation (Samek et al. 2017): ``perturbation.csv`` (mean logit drop ± SE per method and
  step), ``aopc.csv`` (AOPC ± SE, ranked), ``aopc_subjects.csv``, ``figures/perturbation.png``;
* cascading parameter randomisation (Adebayo et al. 2018): ``randomisation.csv`` (Spearman and SSIM
  between the trained network's map and each randomised one, mean ± SE per step),
  ``randomisation_subjects.csv``, ``figures/randomisation.png``;
* localisation against the synthetic cohort's ground truth (``<data.root>/ground_truth/``):
  ``localisation.csv`` (relevance mass ratio and AUC per method and age bin),
  ``localisation_subjects.csv``, ``figures/localisation.png`` — skipped, with a note, for cohorts
  without a ground truth;
* Grad-CAM across layers (seed 002): ``gradcam_layers.csv``, ``figures/methods.png``;
* ``verdict.md`` (ranking, failed sanity checks, localisation) and ``evaluate.json`` (settings,
  per-method timings).

The metrics and their scoring live in :mod:`brainage.faithfulness`, the training run's access in
:mod:`brainage.explaining.training_run`, figures and verdict in :mod:`brainage.reporting`.
Everything is written into a hidden work folder and moved into place at the end, so a failed run
never looks complete.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from brainage.errors import EvaluateError, ExplainError
from brainage.explaining.training_run import (
    TrainRunRequest,
    load_analyzers,
    load_model,
    method_configs,
    open_train_run,
)
from brainage.faithfulness.inputs import prepare_inputs, spread_over_bins
from brainage.faithfulness.scoring import RANDOM, Evaluation, score_methods
from brainage.faithfulness.settings import ScoringSettings
from brainage.faithfulness.tables import write_tables
from brainage.reporting.evaluate_figures import evaluate_figures, methods_figure
from brainage.reporting.verdict import verdict
from brainage.runs import hydra_entry, run_stage, staged_run


@contextmanager
def _as_evaluate_error():
    """The training run's problems (raised as :class:`ExplainError`) as this stage's own error."""
    try:
        yield
    except ExplainError as exc:
        raise EvaluateError(str(exc)) from exc


@dataclass(frozen=True)
class EvaluateSettings:
    """Everything the evaluate stage reads from its config (``configs/evaluate.yaml``)."""

    run: TrainRunRequest
    methods: dict  # {name: analyzer parameters}
    scoring: ScoringSettings

    @classmethod
    def from_cfg(cls, cfg) -> "EvaluateSettings":
        scoring = ScoringSettings.from_cfg(cfg)
        with _as_evaluate_error():
            run, methods = TrainRunRequest.from_cfg(cfg), method_configs(cfg.explainer)
        if RANDOM in methods:
            raise EvaluateError(f"explainer name {RANDOM!r} is reserved for the random-map floor "
                                "(random_map=true)")
        return cls(run, methods, scoring)


def evaluate(cfg, run_dir) -> dict:
    """Run the evaluate stage into ``run_dir``; returns the summary written to ``evaluate.json``."""
    settings = EvaluateSettings.from_cfg(cfg)
    return staged_run(run_dir, lambda work: _evaluate(settings, work), marker="evaluate.json",
                      refuse=("verdict.md",))


def _evaluate(settings: EvaluateSettings, work: Path) -> dict:
    t0 = time.perf_counter()
    scoring = settings.scoring
    with _as_evaluate_error():
        opened = open_train_run(settings.run, scoring.progress)
        model = load_model(opened.train, opened.prep.input_shape)
        analyzers = load_analyzers(model, settings.methods)
    bins = opened.prep.labels()
    rows = spread_over_bins(opened.rows, bins[opened.rows], scoring.subjects_limit)
    data_root = opened.train.data_config(settings.run.data).get("root")
    inputs = prepare_inputs(model, opened.prep, rows, scoring, data_root)
    evaluation = score_methods(model, analyzers, settings.methods, inputs, scoring)
    results = write_tables(work, evaluation)
    summary = {"train_dir": str(opened.train.dir), "model_path": str(opened.train.model_path),
               **evaluation.summary(scoring, settings.methods),
               "seconds": round(time.perf_counter() - t0, 1)}
    _write_report(work, evaluation, results, summary, scoring)
    return summary


def _write_report(work: Path, evaluation: Evaluation, results: dict, summary: dict,
                  scoring: ScoringSettings) -> None:
    """``figures/`` and ``verdict.md``."""
    (work / "figures").mkdir()
    evaluate_figures(work / "figures", results, evaluation.methods,
                     summary["randomisation"]["cascade"], scoring.randomisation.flag_spearman, RANDOM)
    if evaluation.compare_maps:
        first = evaluation.inputs.rand_pos[0]
        methods_figure(evaluation.inputs.x[first], evaluation.compare_maps,
                       f"{evaluation.inputs.subject_ids[first]}: DTD, LRP composite, guided "
                       "backprop and Grad-CAM per layer", work / "figures" / "methods.png")
    (work / "verdict.md").write_text(verdict(summary, results, summary["train_dir"], RANDOM))


def _main(cfg, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_dir, summary = run_stage(evaluate, cfg, run_dir=run_dir)
    print(f"evaluated {', '.join(summary['methods'])} on {summary['n_subjects']} subjects: "
          f"{run_dir}/verdict.md")


main = hydra_entry(_main, "evaluate")

if __name__ == "__main__":
    main()

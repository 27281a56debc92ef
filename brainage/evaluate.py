"""The evaluate stage: are the explanations faithful to the network?

``python -m brainage.evaluate`` (``make evaluate``) scores every selected explanation method in every
target mode (``target=…``, ``pairs=[method:target, …]``), plus a random map as the floor, on a
training run (the newest unless ``train_dir=…`` or ``model_path=…``):

* ``scorecard.csv``: one row per (method, target mode) with every check's number, pass/fail against
  issue #19's goals (``scorecard:`` thresholds) and a verdict; the default DTD variant it selects;
* region perturbation (Samek et al. 2017): ``perturbation.csv``, ``aopc.csv`` (ranked),
  ``aopc_subjects.csv``, ``figures/perturbation.png``;
* cascading parameter randomisation (Adebayo et al. 2018): ``randomisation.csv``,
  ``randomisation_subjects.csv``, ``figures/randomisation.png``;
* localisation against the synthetic cohort's ground truth (``<data.root>/ground_truth/``):
  ``localisation.csv``, ``localisation_subjects.csv``, ``figures/localisation.png`` — skipped, with
  a note, for cohorts without a ground truth;
* youngest- vs oldest-class maps: ``class_maps.csv``; conservation: ``conservation.csv``;
* a regression run (``model.task=regression``) is scored on its age output: AOPC in years,
  relevance summing to the predicted age, class maps not applicable (``n/a``), explainers that
  contrast classes skipped with a note (:mod:`brainage.faithfulness.regression`);
* Grad-CAM across layers (seed 002): ``gradcam_layers.csv``, ``figures/methods.png``;
* ``report.html`` (offline), ``verdict.md`` and ``evaluate.json`` (settings, timings).

``train_dirs=[A, B, C]`` evaluates several training runs (e.g. seeds) into ``models/<k>_<run>/`` and
writes ``scorecard_summary.csv`` (mean ± SD over the models per pair), a ``scorecard.csv`` of every
model's rows, and the verdict and report of the summary.

The metrics and their scoring live in :mod:`brainage.faithfulness`, the training run's access in
:mod:`brainage.trained`, figures, verdict and report in :mod:`brainage.reporting`.
Everything is written into a hidden work folder and moved into place at the end, so a failed run
never looks complete.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from brainage.data.reference_images import with_reference_images
from brainage.errors import EvaluateError
from brainage.faithfulness.aggregate import summarise_scorecards
from brainage.faithfulness.checks import CHECKS, apply_checks
from brainage.faithfulness.default_choice import choose_default
from brainage.faithfulness.inputs import prepare_inputs, spread_over_bins
from brainage.faithfulness.phases import phase
from brainage.faithfulness.regression import (
    REGRESSION_NOT_APPLICABLE,
    regression_scope,
    regression_subjects,
    regression_summary,
)
from brainage.faithfulness.scorecard import build_scorecard
from brainage.faithfulness.scoring import RANDOM, Evaluation, check_pairs, score_methods
from brainage.faithfulness.settings import ScoringSettings
from brainage.faithfulness.tables import write_tables
from brainage.faithfulness.targets import scored_pairs
from brainage.reporting.evaluate_figures import evaluate_figures, methods_figure, scorecard_figure
from brainage.reporting.evaluate_report import write_report
from brainage.reporting.verdict import summary_verdict, verdict
from brainage.runs import hydra_entry, run_stage, staged_run
from brainage.trained import (
    TrainRunRequest,
    load_analyzers,
    load_model,
    method_configs,
    open_train_run,
)


@dataclass(frozen=True)
class EvaluateSettings:
    """Everything the evaluate stage reads from its config (``configs/evaluate.yaml``)."""

    runs: tuple  # TrainRunRequest per model: train_dir / model_path / newest, or train_dirs
    methods: dict  # {name: analyzer parameters}
    scoring: ScoringSettings

    @classmethod
    def from_cfg(cls, cfg) -> "EvaluateSettings":
        scoring = ScoringSettings.from_cfg(cfg)
        run, methods = TrainRunRequest.from_cfg(cfg), method_configs(cfg.explainer)
        if RANDOM in methods:
            raise EvaluateError(f"explainer name {RANDOM!r} is reserved for the random-map floor "
                                "(random_map=true)")
        scored_pairs(methods, scoring.targets, scoring.pairs)  # bad pairs: refused before any work
        return cls(_run_requests(run, cfg.train_dirs), methods, scoring)


def _run_requests(run: TrainRunRequest, train_dirs) -> tuple:
    """One request per model: ``train_dirs`` when given (not with ``train_dir``/``model_path``)."""
    if not train_dirs:
        return (run,)
    if isinstance(train_dirs, str):
        raise EvaluateError(f"train_dirs={train_dirs!r}; expected a list: train_dirs=[runA,runB]")
    if run.train_dir or run.model_path:
        raise EvaluateError("give train_dirs=[…] or train_dir/model_path, not both")
    dirs = [Path(str(d)) for d in train_dirs]
    if len(set(dirs)) < len(dirs):
        raise EvaluateError(f"train_dirs lists a run twice: {[str(d) for d in dirs]}")
    return tuple(dataclasses.replace(run, train_dir=d) for d in dirs)


def evaluate(cfg, run_dir) -> dict:
    """Run the evaluate stage into ``run_dir``; returns the summary written to ``evaluate.json``."""
    settings = EvaluateSettings.from_cfg(cfg)
    produce = _evaluate if len(settings.runs) == 1 else _evaluate_models
    return staged_run(run_dir, lambda work: produce(settings, work), marker="evaluate.json",
                      refuse=("verdict.md",))


def _evaluate(settings: EvaluateSettings, work: Path, run: TrainRunRequest | None = None) -> dict:
    """Score one training run into ``work``: tables, scorecard, figures, verdict and report."""
    t0 = time.perf_counter()
    scoring, run = settings.scoring, run or settings.runs[0]
    opened = open_train_run(run, scoring.progress)
    regression = opened.train.is_regression
    explainers, skipped = (regression_scope(settings.methods, scoring, opened.train.dir)
                           if regression else (settings.methods, {}))
    model = load_model(opened.train, opened.prep.input_shape)
    methods = with_reference_images(explainers, opened.prep)
    analyzers = load_analyzers(model, methods)
    bins = opened.prep.labels()
    rows = spread_over_bins(opened.rows, bins[opened.rows], scoring.subjects_limit)
    data_root = opened.train.data_config(run.data).get("root")
    inputs = prepare_inputs(model, opened.prep, rows, scoring, data_root)
    if regression:
        inputs = dataclasses.replace(inputs, subjects=regression_subjects(inputs.subjects))
    check_pairs(analyzers, inputs, scoring)
    evaluation = score_methods(model, analyzers, methods, inputs, scoring)
    results = write_tables(work, evaluation)
    not_applicable = tuple(REGRESSION_NOT_APPLICABLE) if regression else ()
    card = apply_checks(build_scorecard([p.key for p in evaluation.pairs], results,
                                        settings.methods, scoring.scorecard.randomisation_step),
                        scoring.scorecard, not_applicable)
    card.to_csv(work / "scorecard.csv", index=False)
    choice = choose_default(card)
    summary = {"train_dir": str(opened.train.dir), "model_path": str(opened.train.model_path),
               **evaluation.summary(scoring, settings.methods),
               **(regression_summary(skipped) if regression else {}),
               "default_choice": dataclasses.asdict(choice),
               "seconds": round(time.perf_counter() - t0, 1)}
    with phase("figures and report", "drawing the perturbation, randomisation, localisation, "
               "scorecard and methods figures, then writing verdict.md and report.html", 3,
               summary["phase_seconds"], scoring.progress, unit="step") as run:
        _write_report(work, evaluation, results, card, summary,
                      choice.sentence(len(CHECKS) - len(not_applicable)), run)
    return summary


def _write_report(work: Path, evaluation: Evaluation, results: dict, card, summary: dict,
                  choice: str, run) -> None:
    """``figures/``, ``verdict.md`` and ``report.html`` (``choice``: the default-choice sentence;
    ``run``: the phase whose bar counts the three steps)."""
    scoring_figures = work / "figures"
    scoring_figures.mkdir()
    run.at("figures")
    evaluate_figures(scoring_figures, results, card, summary["randomisation"]["cascade"],
                     summary["randomisation"]["flag_spearman"], RANDOM)
    run.update()
    if evaluation.compare_maps:
        run.at("methods figure")
        first = evaluation.inputs.rand_pos[0]
        methods_figure(evaluation.inputs.x[first], evaluation.compare_maps,
                       f"{evaluation.inputs.subject_ids[first]}: DTD, LRP composite, guided "
                       "backprop and Grad-CAM per layer", scoring_figures / "methods.png")
    run.update()
    run.at("verdict and report")
    text = verdict(summary, results, card, choice, summary["train_dir"], RANDOM)
    (work / "verdict.md").write_text(text)
    write_report(work, summary, card, choice, text)
    run.update()


def _evaluate_models(settings: EvaluateSettings, work: Path) -> dict:
    """Score every training run of ``train_dirs`` into ``models/<k>_<run>/``, then summarise."""
    t0 = time.perf_counter()
    cards, models, summaries = {}, [], []
    for k, run in enumerate(settings.runs):
        label = f"{k}_{run.train_dir.name}"
        folder = work / "models" / label
        folder.mkdir(parents=True)
        summary = _evaluate(settings, folder, run)
        (folder / "evaluate.json").write_text(json.dumps(summary, indent=2, default=str))
        cards[label] = pd.read_csv(folder / "scorecard.csv", dtype={"target": str})
        models.append({"model": label, "train_dir": summary["train_dir"]})
        summaries.append(summary)
    regression = _one_task(summaries)
    not_applicable = tuple(REGRESSION_NOT_APPLICABLE) if regression else ()
    table = summarise_scorecards(cards)
    card = apply_checks(table, settings.scoring.scorecard, not_applicable)
    card.to_csv(work / "scorecard_summary.csv", index=False)
    pd.concat([c.assign(model=m) for m, c in cards.items()]).to_csv(work / "scorecard.csv",
                                                                   index=False)
    choice = choose_default(card)
    (work / "figures").mkdir()
    scorecard_figure(card, work / "figures" / "scorecard.png")
    methods = (settings_methods(settings) if not regression
               else [m for m in settings_methods(settings)
                     if m not in summaries[0]["skipped_methods"]])
    summary = {"train_dirs": [m["train_dir"] for m in models], "models": models,
               "methods": methods, "target": settings.scoring.target_texts,
               "n_models": len(models),
               **(regression_summary(summaries[0]["skipped_methods"]) if regression else {}),
               "default_choice": dataclasses.asdict(choice),
               "seconds": round(time.perf_counter() - t0, 1)}
    sentence = choice.sentence(len(CHECKS) - len(not_applicable))
    text = summary_verdict(summary, card, sentence, RANDOM)
    (work / "verdict.md").write_text(text)
    write_report(work, summary, card, sentence, text)
    return summary


def _one_task(summaries: list) -> bool:
    """Whether the models are age regressors; a mix of regressors and classifiers is refused
    (their scorecards explain different outputs)."""
    tasks = {s["train_dir"]: s.get("task", "classification") for s in summaries}
    if len(set(tasks.values())) > 1:
        raise EvaluateError("train_dirs mixes tasks, so the scorecards cannot be averaged: "
                            + ", ".join(f"{d} is a {t}" for d, t in tasks.items())
                            + "; evaluate classifiers and regressors separately")
    return "regression" in tasks.values()


def settings_methods(settings: EvaluateSettings) -> list:
    return list(settings.methods) + ([RANDOM] if settings.scoring.random_map else [])


def _main(cfg, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_dir, summary = run_stage(evaluate, cfg, run_dir=run_dir)
    scope = (f"{summary['n_models']} models" if "n_models" in summary
             else f"{summary['n_subjects']} subjects")
    print(f"evaluated {', '.join(summary['methods'])} on {scope}: {run_dir}/verdict.md")


main = hydra_entry(_main, "evaluate")

if __name__ == "__main__":
    main()

"""Several training runs (``train_dirs=[A, B, C]``, e.g. seeds) evaluated as one: each into
``models/<k>_<run>/``, then ``scorecard_summary.csv`` (mean ± SD per pair over the models), a
``scorecard.csv`` of every model's rows, and the summary's verdict and report. Their ensemble is
scored as one more model into ``models/ensemble/`` (:mod:`~brainage.faithfulness.ensemble_scoring`;
``ensemble_scored=false`` skips it), its rows copied to ``scorecard_ensemble.csv`` and set beside
the members' mean in the verdict and report."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pandas as pd

from brainage.errors import EvaluateError
from brainage.faithfulness.aggregate import summarise_scorecards
from brainage.faithfulness.checks import CHECKS, apply_checks
from brainage.faithfulness.default_choice import choose_default
from brainage.faithfulness.ensemble_scoring import ENSEMBLE_DIR, evaluate_ensemble
from brainage.faithfulness.evaluation import EvaluateSettings, evaluate_run
from brainage.faithfulness.explained import RANDOM
from brainage.faithfulness.regression import REGRESSION_NOT_APPLICABLE, regression_summary
from brainage.reporting.evaluate_figures import scorecard_figure
from brainage.reporting.evaluate_report import write_report
from brainage.reporting.scorecard_cells import ensemble_cells
from brainage.reporting.verdict import summary_verdict

ENSEMBLE_SCORECARD = "scorecard_ensemble.csv"


def evaluate_runs(settings: EvaluateSettings, work: Path) -> dict:
    """Score every training run of ``train_dirs`` into ``models/<k>_<run>/``, then summarise."""
    t0 = time.perf_counter()
    cards, summaries = _evaluate_each(settings, work)
    regression = one_task(summaries)
    not_applicable = tuple(REGRESSION_NOT_APPLICABLE) if regression else ()
    void = ("localisation",) if any(s["model_skill"]["void"] for s in summaries) else ()
    card = apply_checks(summarise_scorecards(cards), settings.scoring.scorecard, not_applicable,
                        void)
    card.to_csv(work / "scorecard_summary.csv", index=False)
    pd.concat([c.assign(model=m) for m, c in cards.items()]).to_csv(work / "scorecard.csv",
                                                                   index=False)
    choice = choose_default(card)
    (work / "figures").mkdir()
    scorecard_figure(card, work / "figures" / "scorecard.png")
    ensemble = evaluate_ensemble(settings, work, summaries)
    beside = (_ensemble_beside(work, card, settings.scoring.scorecard.randomisation_step)
              if ensemble["scored"] else None)
    skipped = summaries[0]["skipped_methods"] if regression else []
    models = [{"model": label, "train_dir": s["train_dir"], "model_skill": s["model_skill"]}
              for label, s in zip(cards, summaries)]
    summary = {"train_dirs": [m["train_dir"] for m in models], "models": models,
               "methods": [m for m in settings.scored_methods if m not in skipped],
               "target": settings.scoring.target_texts, "n_models": len(models),
               **(regression_summary(skipped) if regression else {}),
               "default_choice": dataclasses.asdict(choice), "ensemble": ensemble,
               "seconds": round(time.perf_counter() - t0, 1)}
    sentence = choice.sentence(len(CHECKS) - len(not_applicable))
    text = summary_verdict(summary, card, sentence, RANDOM, beside)
    (work / "verdict.md").write_text(text)
    write_report(work, summary, card, sentence, text, beside)
    return summary


def _ensemble_beside(work: Path, card: pd.DataFrame, step: str) -> pd.DataFrame:
    """The ensemble's scorecard copied to ``scorecard_ensemble.csv``, as cells beside the
    members' mean (``card``: the summary)."""
    ensemble = pd.read_csv(work / "models" / ENSEMBLE_DIR / "scorecard.csv", dtype={"target": str})
    ensemble.to_csv(work / ENSEMBLE_SCORECARD, index=False)
    return ensemble_cells(ensemble, card, step)


def _evaluate_each(settings: EvaluateSettings, work: Path) -> tuple[dict, list]:
    """Every run scored into its own folder; its scorecard by label, and its summary."""
    cards, summaries = {}, []
    for k, run in enumerate(settings.runs):
        label = f"{k}_{run.train_dir.name}"
        folder = work / "models" / label
        folder.mkdir(parents=True)
        summary = evaluate_run(settings, folder, run)
        (folder / "evaluate.json").write_text(json.dumps(summary, indent=2, default=str))
        cards[label] = pd.read_csv(folder / "scorecard.csv", dtype={"target": str})
        summaries.append(summary)
    return cards, summaries


def one_task(summaries: list) -> bool:
    """Whether the models are age regressors; a mix of regressors and classifiers is refused
    (their scorecards explain different outputs)."""
    tasks = {s["train_dir"]: s.get("task", "classification") for s in summaries}
    if len(set(tasks.values())) > 1:
        raise EvaluateError("train_dirs mixes tasks, so the scorecards cannot be averaged: "
                            + ", ".join(f"{d} is a {t}" for d, t in tasks.items())
                            + "; evaluate classifiers and regressors separately")
    return "regression" in tasks.values()

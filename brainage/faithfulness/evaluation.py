"""The evaluate stage's work on one training run: settings, scoring, tables, scorecard, report.

:func:`evaluate_run` opens a training run, scores every (method, target) pair with
:mod:`~brainage.faithfulness.scoring`, then :func:`write_evaluation` writes the tables,
``scorecard.csv`` and the default DTD variant's choice, the figures, ``verdict.md`` and
``report.html`` of any scored model (an ensemble's too). :class:`EvaluateSettings` is everything
the stage reads from ``configs/evaluate.yaml``; several training runs are
:mod:`~brainage.faithfulness.several_runs`' matter.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from brainage.config_values import ConfigReader, flag
from brainage.data.reference_images import with_reference_images
from brainage.ensemble.members import member_dirs, stands_for_runs
from brainage.errors import EnsembleError, EvaluateError, TrainedRunError
from brainage.faithfulness.checks import CHECKS, apply_checks
from brainage.faithfulness.default_choice import choose_default
from brainage.faithfulness.inputs import ScoringInputs, prepare_inputs, spread_over_bins
from brainage.faithfulness.model_skill import localisation_void, model_skill
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
from brainage.reporting.evaluate_figures import evaluate_figures, methods_figure
from brainage.reporting.evaluate_report import write_report
from brainage.reporting.verdict import verdict
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
    ensemble_scored: bool  # train_dirs: also score the runs' ensemble as one more model

    @classmethod
    def from_cfg(cls, cfg) -> "EvaluateSettings":
        scoring = ScoringSettings.from_cfg(cfg)
        run, methods = TrainRunRequest.from_cfg(cfg), method_configs(cfg.explainer)
        if RANDOM in methods:
            raise EvaluateError(f"explainer name {RANDOM!r} is reserved for the random-map floor "
                                "(random_map=true)")
        scored_pairs(methods, scoring.targets, scoring.pairs)  # bad pairs: refused before any work
        ensemble = ConfigReader(cfg, "", EvaluateError).value("ensemble_scored", flag,
                                                               "true or false")
        return cls(_run_requests(run, cfg.train_dirs), methods, scoring, ensemble)

    @property
    def scored_methods(self) -> list:
        """The methods' names, and the random map's when it is scored."""
        return list(self.methods) + ([RANDOM] if self.scoring.random_map else [])


def _run_requests(run: TrainRunRequest, train_dirs) -> tuple:
    """One request per model: ``train_dirs`` when given (not with ``train_dir``/``model_path``),
    each entry a run, a sweep or an ensemble training run standing for its members; a
    ``train_dir`` that is an ensemble training run (``make train trainer.ensemble=N``) stands for
    its members too."""
    if not train_dirs:
        if run.train_dir and not run.model_path and stands_for_runs(run.train_dir):
            return _member_requests(run, [run.train_dir])
        return (run,)
    if isinstance(train_dirs, str):
        raise EvaluateError(f"train_dirs={train_dirs!r}; expected a list: train_dirs=[runA,runB]")
    if run.train_dir or run.model_path:
        raise EvaluateError("give train_dirs=[…] or train_dir/model_path, not both")
    return _member_requests(dataclasses.replace(run, train_dir=None), train_dirs)


def _member_requests(run: TrainRunRequest, entries) -> tuple:
    """A request per training run of ``entries`` (:func:`~brainage.ensemble.members.member_dirs`:
    sweeps and ensemble runs expanded, a run listed twice refused)."""
    try:
        dirs = member_dirs(entries)
    except EnsembleError as exc:
        raise EvaluateError(str(exc)) from exc
    return tuple(dataclasses.replace(run, train_dir=d) for d in dirs)


@dataclass(frozen=True)
class ScoredModel:
    """A model's scoring, ready to be written.

    Attributes
    ----------
    header : dict
        ``evaluate.json``'s first keys: what the model is (``train_dir``, ``model_path``; an
        ensemble's members), and checks not scored for it (``skipped_checks``: ``{check: why}``).
    name : str
        How the verdict names the model.
    skill : dict
        Its test skill (:func:`~brainage.faithfulness.model_skill.model_skill`).
    evaluation : Evaluation
    regression : bool
    skipped : dict
        A regressor's explainers skipped, ``{name: why}``.
    """

    header: dict
    name: str
    skill: dict
    evaluation: Evaluation
    regression: bool
    skipped: dict


def evaluate_run(settings: EvaluateSettings, work: Path, run: TrainRunRequest | None = None) -> dict:
    """Score one training run (``run``, else the settings' only one) into ``work``: tables,
    scorecard, figures, verdict and report; returns the summary for ``evaluate.json``."""
    t0 = time.perf_counter()
    scoring, run = settings.scoring, run or settings.runs[0]
    opened = open_train_run(run, scoring.progress)
    regression = opened.train.is_regression
    explainers, skipped = scored_explainers(settings, opened.train)
    skill = _skill(opened.train)
    evaluation = _score(opened, explainers, run, scoring)
    header = {"train_dir": str(opened.train.dir), "model_path": str(opened.train.model_path)}
    return write_evaluation(work, settings, ScoredModel(header, str(opened.train.dir), skill,
                                                        evaluation, regression, skipped), t0)


def scored_explainers(settings: EvaluateSettings, train) -> tuple[dict, dict]:
    """``(explainers, skipped)``: a regressor's explainers without those that need classes
    (:func:`~brainage.faithfulness.regression.regression_scope`); a classifier's all."""
    if train.is_regression:
        return regression_scope(settings.methods, settings.scoring, train.dir)
    return settings.methods, {}


def write_evaluation(work: Path, settings: EvaluateSettings, scored: ScoredModel, t0: float) -> dict:
    """A scored model's tables, ``scorecard.csv``, figures, ``verdict.md`` and ``report.html``
    in ``work`` (``t0``: when its scoring began); returns the summary for ``evaluate.json``."""
    scoring, evaluation, skill = settings.scoring, scored.evaluation, scored.skill
    results = write_tables(work, evaluation)
    skill["void"] = (localisation_void(skill, scoring.localisation)
                     if "localisation" in results else None)
    not_applicable = tuple(REGRESSION_NOT_APPLICABLE) if scored.regression else ()
    card = apply_checks(build_scorecard([p.key for p in evaluation.pairs], results,
                                        settings.methods, scoring.scorecard.randomisation_step),
                        scoring.scorecard, not_applicable,
                        ("localisation",) if skill["void"] else ())
    card.to_csv(work / "scorecard.csv", index=False)
    choice = choose_default(card)
    summary = {**scored.header, "model_skill": skill,
               **evaluation.summary(scoring, settings.methods),
               **(regression_summary(scored.skipped) if scored.regression else {}),
               "default_choice": dataclasses.asdict(choice),
               "seconds": round(time.perf_counter() - t0, 1)}
    with phase("figures and report", "drawing the perturbation, randomisation, localisation, "
               "scorecard and methods figures, then writing verdict.md and report.html", 3,
               summary["phase_seconds"], scoring.progress, unit="step") as steps:
        _write_report(work, evaluation, results, card, summary, scored.name,
                      choice.sentence(len(CHECKS) - len(not_applicable)), steps)
    return summary


def _skill(train) -> dict:
    """The run's test skill (:func:`model_skill`); unknown when it has no readable metrics."""
    try:
        return model_skill(train.metrics())
    except TrainedRunError:
        return model_skill({"task": "regression"} if train.is_regression else {})


def _score(opened, explainers: dict, run: TrainRunRequest, scoring: ScoringSettings) -> Evaluation:
    """The model and its analyzers loaded, the scored subjects chosen (in turn from each age bin)
    and every pair scored on them."""
    model = load_model(opened.train, opened.prep.input_shape)
    methods = with_reference_images(explainers, opened.prep)
    analyzers = load_analyzers(model, methods)
    inputs = scored_inputs(opened, model, run, scoring)
    check_pairs(analyzers, inputs, scoring)
    return score_methods(model, analyzers, methods, inputs, scoring)


def scored_inputs(opened, model, run: TrainRunRequest, scoring: ScoringSettings,
                  outputs=None) -> ScoringInputs:
    """The scored subjects of the opened run (at most ``subjects_limit``, in turn from each age
    bin) and what their maps are scored against (:func:`prepare_inputs`; ``model``, a Keras model,
    checks the cascade and Grad-CAM settings). ``outputs(inputs)`` replaces the model's outputs
    (an ensemble's mean) before a regressor's subjects table takes its predicted age from them."""
    bins = opened.prep.labels()
    rows = spread_over_bins(opened.rows, bins[opened.rows], scoring.subjects_limit)
    data_root = opened.train.data_config(run.data).get("root")
    inputs = prepare_inputs(model, opened.prep, rows, scoring, data_root)
    if outputs is not None:
        inputs = outputs(inputs)
    if opened.train.is_regression:
        inputs = dataclasses.replace(inputs, subjects=regression_subjects(inputs.subjects))
    return inputs


def _write_report(work: Path, evaluation: Evaluation, results: dict, card, summary: dict,
                  name: str, choice: str, steps) -> None:
    """``figures/``, ``verdict.md`` and ``report.html`` (``name``: the model's, ``choice``: the
    default-choice sentence; ``steps``: the phase whose bar counts the three steps)."""
    scoring_figures = work / "figures"
    scoring_figures.mkdir()
    steps.at("figures")
    evaluate_figures(scoring_figures, results, card, summary["randomisation"]["cascade"],
                     summary["randomisation"]["flag_spearman"], RANDOM)
    steps.update()
    if evaluation.compare_maps:
        steps.at("methods figure")
        first = evaluation.inputs.rand_pos[0]
        methods_figure(evaluation.inputs.x[first], evaluation.compare_maps,
                       f"{evaluation.inputs.subject_ids[first]}: DTD, LRP composite, guided "
                       "backprop and Grad-CAM per layer", scoring_figures / "methods.png")
    steps.update()
    steps.at("verdict and report")
    text = verdict(summary, results, card, choice, name, RANDOM)
    (work / "verdict.md").write_text(text)
    write_report(work, summary, card, choice, text)
    steps.update()

"""The ensemble of ``train_dirs`` scored as one more model, into ``models/ensemble/``.

After every training run is scored alone, the runs are opened as one ensemble
(:func:`~brainage.ensemble.members.open_ensemble`: same task, grid and age bins; a run without
``grid.json`` is compared by its own cohort's grid). Runs that cannot form one are not scored
together, and :func:`evaluate_ensemble` says why. Otherwise the ensemble goes through one model's
scoring (:func:`~brainage.faithfulness.scoring.score_methods`) and one model's files
(:func:`~brainage.faithfulness.evaluation.write_evaluation`), on the first member's scored
subjects (the members' own, where they share the split):

* **outputs**: the mean of the members' logits (or predicted ages) is the output every check
  tracks; the ensemble's predicted class is the arg-max of its mean probabilities, as ``make
  predict`` and ``make explain train_dirs=…`` give it;
* **maps**: every member explains the same class, and the ensemble's map is the mean of the
  members' maps (:class:`~brainage.ensemble.one_model.EnsembleAnalyzer`), so localisation, class
  maps and conservation (the mean map against the mean explained output) are scored on it;
* **region perturbation**: the mean logit of the explained class (or the mean age) as the most
  relevant patches are removed;
* **randomisation**: each cascade step re-initialises the same named layers in a copy of every
  member, each drawn as that member's own cascade draws it, and the ensemble of the copies is
  explained (members of different layers: not scored, with the reason);
* **Grad-CAM across layers**: not scored — it profiles one network's conv layers, and a mean of
  several networks' layer maps is no layer's map.

The ensemble's test skill is its members' test predictions combined
(:func:`~brainage.ensemble.test_score.ensemble_test_metrics`), unknown where they have none or
were tested on different subjects.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from brainage.ensemble.combine import ensemble_classes
from brainage.ensemble.loading import LoadedEnsemble, load_ensemble
from brainage.ensemble.members import Ensemble, open_ensemble
from brainage.ensemble.one_model import EnsembleModel
from brainage.ensemble.test_score import ensemble_test_metrics
from brainage.errors import EnsembleError
from brainage.faithfulness.evaluation import (
    EvaluateSettings,
    ScoredModel,
    scored_explainers,
    scored_inputs,
    write_evaluation,
)
from brainage.faithfulness.inputs import ScoringInputs
from brainage.faithfulness.model_skill import model_skill
from brainage.faithfulness.perturbation import logit_function
from brainage.faithfulness.randomisation import cascade_groups
from brainage.faithfulness.scoring import Evaluation, check_pairs, score_methods
from brainage.trained import OpenedRun, TrainingCohorts, select_subjects

ENSEMBLE_DIR = "ensemble"  # models/ensemble/, beside the members' models/<k>_<run>/
GRADCAM_LAYERS = ("it profiles one network's conv layers, and the mean of several networks' "
                  "layer maps is no layer's map of one network")
EXPLAINS = ("the mean of the members' maps, each member explaining the ensemble's class (for "
            "predicted: the arg-max of the mean probabilities); region perturbation tracks the "
            "mean of the members' logits of that class (a regressor's: the mean predicted age)")
RANDOMISES = ("each cascade step re-initialises the same named layers in a copy of every member, "
              "each drawn as the member's own cascade draws it; the ensemble of the copies is "
              "explained")


def evaluate_ensemble(settings: EvaluateSettings, work: Path, members: list) -> dict:
    """Score the ensemble of ``settings.runs`` into ``work/models/ensemble/`` (``members``: the
    runs' own summaries, in order); returns ``evaluate.json``'s ``ensemble`` entry: the folder,
    the test skill and whether the subjects were the members', or why it was not scored."""
    if not settings.ensemble_scored:
        return {"scored": False, "reason": "ensemble_scored=false"}
    request = settings.runs[0]
    cohorts = TrainingCohorts(request.data, settings.scoring.progress)
    try:
        ensemble = open_ensemble([run.train_dir for run in settings.runs], request.outputs_dir,
                                 cohorts.grid_of)
    except EnsembleError as exc:
        return {"scored": False, "reason": f"the runs do not form one ensemble: {exc}"}
    folder = work / "models" / ENSEMBLE_DIR
    folder.mkdir(parents=True)
    summary = score_ensemble(settings, ensemble, cohorts, folder)
    (folder / "evaluate.json").write_text(json.dumps(summary, indent=2, default=str))
    return {"scored": True, "folder": f"models/{ENSEMBLE_DIR}", "n_members": len(ensemble.members),
            "model_skill": summary["model_skill"],
            "same_subjects": all(s["subjects"] == summary["subjects"] for s in members),
            "skipped_checks": summary["skipped_checks"]}


def score_ensemble(settings: EvaluateSettings, ensemble: Ensemble, cohorts: TrainingCohorts,
                   work: Path) -> dict:
    """The ensemble scored as one model into ``work``, on the first member's subjects; returns
    its summary (one model's keys; ``train_dirs``, ``n_members``, ``ensemble_scoring`` and
    ``skipped_checks`` in place of ``train_dir``)."""
    t0 = time.perf_counter()
    first, request = ensemble.first, settings.runs[0]
    prep = cohorts.of(first)
    opened = OpenedRun(first, prep, select_subjects(prep.table, request.subjects))
    explainers, skipped = scored_explainers(settings, first)
    loaded = load_ensemble(ensemble, prep.input_shape, explainers,
                           lambda train: cohorts.reference_cohort(train, opened))
    scoring, skipped_checks = _ensemble_scoring(settings.scoring, loaded.model)
    inputs = scored_inputs(
        opened, loaded.model.models[0], request, scoring,
        lambda member: ensemble_outputs(member, loaded.model, scoring.perturbation.batch_size))
    evaluation = _score(loaded, explainers, inputs, scoring)
    header = {"train_dirs": ensemble.dirs, "n_members": len(ensemble.members),
              "ensemble_scoring": {"explains": EXPLAINS, "randomises": RANDOMISES},
              "skipped_checks": skipped_checks}
    name = f"ensemble of {len(ensemble.members)}: {', '.join(ensemble.dirs)}"
    return write_evaluation(work, settings, ScoredModel(header, name, ensemble_skill(ensemble),
                                                        evaluation, ensemble.is_regression,
                                                        skipped), t0)


def _ensemble_scoring(scoring, model: EnsembleModel) -> tuple:
    """The scoring settings with the checks that do not apply to the ensemble turned off, and
    ``{check: why}`` of those (Grad-CAM across layers; randomisation of members whose layers
    differ)."""
    skipped = {}
    if scoring.gradcam_layers.enabled:
        skipped["gradcam_layers"] = GRADCAM_LAYERS
        scoring = dataclasses.replace(scoring, gradcam_layers=dataclasses.replace(
            scoring.gradcam_layers, enabled=False))
    granularity = scoring.randomisation.granularity
    steps = [cascade_groups(m, granularity) for m in model.models]
    if scoring.randomisation.enabled and any(s != steps[0] for s in steps[1:]):
        skipped["randomisation"] = ("the members' layers differ, so no cascade step randomises "
                                    "the same layers in every member")
        scoring = dataclasses.replace(scoring, randomisation=dataclasses.replace(
            scoring.randomisation, enabled=False))
    return scoring, skipped


def ensemble_outputs(inputs: ScoringInputs, model: EnsembleModel, batch_size: int) -> ScoringInputs:
    """``inputs`` (prepared with one member) with the ensemble's outputs: ``predict`` the mean of
    the members' logits (or ages), ``logits`` those of the scored subjects, ``predicted`` the
    arg-max of the mean probabilities, and the subjects table's ``predicted`` and ``logit_<k>``."""
    functions = [logit_function(member, batch_size) for member in model.models]

    def predict(x: np.ndarray) -> np.ndarray:
        return np.mean([f(x) for f in functions], axis=0)

    members = np.stack([f(inputs.x) for f in functions])
    logits, predicted = members.mean(axis=0), ensemble_classes(members, model.regression)
    subjects = inputs.subjects.assign(
        predicted=predicted, **{f"logit_{k}": logits[:, k] for k in range(logits.shape[1])})
    return dataclasses.replace(inputs, subjects=subjects, logits=logits, predict=predict,
                               predicted=predicted)


def _score(loaded: LoadedEnsemble, explainers: dict, inputs: ScoringInputs,
           scoring) -> Evaluation:
    """Every pair scored on the ensemble; a randomised copy's analyzer is built from each
    member's own parameters (``{method: one per member}``)."""
    check_pairs(loaded.analyzers, inputs, scoring)
    per_member = {name: tuple(methods[name] for methods in loaded.member_methods)
                  for name in explainers}
    return score_methods(loaded.model, loaded.analyzers, per_member, inputs, scoring)


def ensemble_skill(ensemble: Ensemble) -> dict:
    """The ensemble's test skill (:func:`model_skill`) from its members' combined test
    predictions, with a ``note`` where it is unknown."""
    metrics, note = ensemble_test_metrics(ensemble)
    return {**model_skill(metrics), **({"note": note} if note else {})}

"""Score every (method, target mode) pair on the same subjects: every check of the scorecard.

The work runs in phases, each logged, timed and shown with a progress bar
(:mod:`brainage.faithfulness.phases`):

* **maps**: each pair explains the subjects once (a random map per target mode is the floor);
  each map's conservation error, its localisation against the ground truth and its relevance per
  perturbation patch are scored as it is made, so only one pair's maps are held at a time;
* **perturbation (AOPC)**: region perturbation of every pair's maps at once, all pairs, subjects
  and steps batched through one compiled forward pass, each distinct perturbed input predicted
  once (:func:`~brainage.faithfulness.perturbation.region_perturbations`);
* **class maps**, **randomisation**, **Grad-CAM layers**: :mod:`brainage.faithfulness.pair_phases`.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from brainage.errors import EvaluateError
from brainage.faithfulness.conservation import identity_of
from brainage.faithfulness.explained import RANDOM, explain_maps
from brainage.faithfulness.inputs import ScoringInputs
from brainage.faithfulness.localisation import localisation_scores
from brainage.faithfulness.pair_phases import (
    class_map_phase,
    gradcam_phase,
    pair_label,
    randomisation_phase,
    tagged,
)
from brainage.faithfulness.perturbation import (
    patch_labels,
    patch_relevance,
    random_maps,
    region_perturbations,
)
from brainage.faithfulness.phases import phase
from brainage.faithfulness.targets import ScoredPair, scored_pairs

__all__ = ["RANDOM", "Evaluation", "check_pairs", "explain_maps", "score_methods"]


@dataclass
class Evaluation:
    """Per-subject results of scoring every pair, before they are summarised into tables.

    Every per-subject row carries ``method`` and ``target`` (the target mode's text).
    """

    pairs: list  # ScoredPair, the floors last
    inputs: ScoringInputs
    curves: list = field(default_factory=list)  # perturbation curves, a DataFrame per pair
    aopc: list = field(default_factory=list)  # {subject_id, bin, method, target, class, aopc}
    localisation: list = field(default_factory=list)  # a DataFrame per pair
    conservation: list = field(default_factory=list)  # a DataFrame per pair
    class_maps: list = field(default_factory=list)  # a DataFrame per pair
    classes: dict = field(default_factory=dict)  # pair key -> explained class per subject
    originals: dict = field(default_factory=dict)  # pair key -> maps of the randomisation subjects
    timings: dict = field(default_factory=dict)  # method -> {targets: {target: s}, randomisation_s}
    phase_seconds: dict = field(default_factory=dict)  # phase -> wall-clock seconds
    randomisation: pd.DataFrame = field(default_factory=pd.DataFrame)
    gradcam_layers: pd.DataFrame = field(default_factory=pd.DataFrame)
    compare_maps: dict = field(default_factory=dict)  # the methods figure's maps of one subject
    flagged: dict = field(default_factory=dict)  # "method:target" -> Spearman at flag_after

    def flagged_methods(self, target: str) -> dict:
        """``{method: Spearman}`` of the flagged pairs in one target mode."""
        return {key.rsplit(":", 1)[0]: value for key, value in self.flagged.items()
                if key.rsplit(":", 1)[1] == target}

    @property
    def methods(self) -> list:
        """The methods scored, in order, the floor last."""
        return list(dict.fromkeys(p.method for p in self.pairs))

    def summary(self, settings, explainers: dict) -> dict:
        """What ``evaluate.json`` records about the scoring (settings as read, cascade, notes)."""
        inputs, truth = self.inputs, self.inputs.truth
        return {
            "methods": self.methods, "explainers": explainers, "target": settings.target_texts,
            "pairs": [f"{p.method}:{p.target.text}" for p in self.pairs],
            "n_subjects": int(len(inputs.rows)), "subjects": list(inputs.subject_ids),
            "randomisation_subjects": list(inputs.subject_ids[inputs.rand_pos]),
            "class_map_subjects": list(inputs.subject_ids[inputs.class_pos]),
            "perturbation": dataclasses.asdict(settings.perturbation),
            "randomisation": {**dataclasses.asdict(settings.randomisation),
                              "flag_after": inputs.flag_after,
                              "cascade": [g for g, _ in inputs.groups]},
            "localisation": {**dataclasses.asdict(settings.localisation),
                             "ground_truth_note": truth.note,
                             "mask_share": (float(truth.mask[inputs.brain].mean())
                                            if truth.mask is not None else None)},
            "class_maps": dataclasses.asdict(settings.class_maps),
            "scorecard": dataclasses.asdict(settings.scorecard),
            "flagged": self.flagged_methods(settings.targets[0].text),
            "flagged_pairs": self.flagged, "timings": self.timings,
            "phase_seconds": self.phase_seconds,
        }


def check_pairs(analyzers: dict, inputs: ScoringInputs, settings) -> None:
    """Explain one subject in every target mode with a suffix, before slow work: a target the
    relevance engine does not accept is refused now, naming the pair."""
    for pair in scored_pairs(analyzers, settings.targets, settings.pairs):
        if not pair.target.suffix:
            continue
        classes = inputs.classes(pair.target)[:1]
        try:
            analyzers[pair.method].explain(inputs.x[:1], target=pair.target.fixed_class_target,
                                           labels=classes)
        except ValueError as exc:
            raise EvaluateError(f"{pair.method}:{pair.target.text}: the relevance engine refuses "
                                f"this target mode: {exc}") from exc


def score_methods(model, analyzers: dict, explainers: dict, inputs: ScoringInputs,
                  settings) -> Evaluation:
    """Every check on every (method, target mode) pair (``explainers``: the methods' parameters,
    to re-explain randomised copies of ``model``; for an ensemble,
    :class:`~brainage.ensemble.one_model.EnsembleModel`, one set per member); ``settings`` is a
    :class:`~brainage.faithfulness.settings.ScoringSettings`. Phase by phase, see the module."""
    pairs = scored_pairs(analyzers, settings.targets, settings.pairs)
    floors = [ScoredPair(RANDOM, mode) for mode in settings.targets] if settings.random_map else []
    evaluation = Evaluation(pairs + floors, inputs)
    scores = map_phase(evaluation, analyzers, settings)
    if settings.perturbation.enabled:
        perturbation_phase(evaluation, scores, settings)
    # One output (an age regressor) has no youngest and oldest class: the check does not apply.
    if settings.class_maps.enabled and inputs.logits.shape[1] > 1:
        class_map_phase(evaluation, analyzers, settings)
    if settings.randomisation.enabled:
        randomisation_phase(model, explainers, evaluation, settings)
    if settings.gradcam_layers.enabled:
        gradcam_phase(model, evaluation, settings)
    return evaluation


def map_phase(evaluation: Evaluation, analyzers: dict, settings) -> dict:
    """Explain the subjects with every pair; score each map's conservation and localisation as it
    is made. Returns ``{pair key: relevance per perturbation patch}`` (perturbation enabled)."""
    inputs, n = evaluation.inputs, len(evaluation.inputs.rows)
    located = inputs.truth.mask is not None
    labels, n_patches = patch_labels(inputs.x.shape[1:-1], settings.perturbation.patch)
    scored = "conservation" + (" and localisation against the ground truth" if located else "")
    what = (f"explaining {n} subjects with each of {len(evaluation.pairs)} (method, target) pairs "
            f"({len(evaluation.methods)} methods, the random floor included); each map's {scored} "
            "is scored as it is made")
    scores, seconds = {}, {"localisation": 0.0}
    with phase("maps", what, len(evaluation.pairs) * n, evaluation.phase_seconds,
               settings.progress) as run:
        for pair in evaluation.pairs:
            run.at(pair_label(pair, settings))
            maps = pair_maps(evaluation, pair, analyzers.get(pair.method), settings, run.update)
            if settings.perturbation.enabled:
                scores[pair.key] = patch_relevance(maps, labels, n_patches)
            if located:
                t = time.perf_counter()
                evaluation.localisation.append(tagged(localise(maps, inputs, settings), pair,
                                                      inputs, evaluation.classes[pair.key]))
                seconds["localisation"] += time.perf_counter() - t
    if located:
        evaluation.phase_seconds["localisation (within maps)"] = round(seconds["localisation"], 1)
    return scores


def pair_maps(evaluation: Evaluation, pair: ScoredPair, analyzer, settings,
              progress=None) -> np.ndarray:
    """The subjects' maps of one pair (or the random floor), with their conservation errors,
    explained classes, timing and the randomisation subjects' maps recorded (``progress(n)``
    after each batch of ``n`` maps)."""
    inputs = evaluation.inputs
    classes = inputs.classes(pair.target)
    evaluation.classes[pair.key] = classes
    t = time.perf_counter()
    if pair.method == RANDOM:
        maps = np.stack([random_maps(inputs.x.shape[1:], settings.seed + int(row))
                         for row in inputs.rows])
        errors = np.full(len(maps), np.nan)
        if progress is not None:
            progress(len(maps))
    else:
        maps, errors = explain_maps(analyzer, inputs.x, pair.target, classes,
                                    settings.batch_size, identity_of(analyzer), progress)
    timing = {"explain_s_per_map": (time.perf_counter() - t) / len(inputs.rows)}
    evaluation.timings.setdefault(pair.method, {"targets": {}})["targets"][pair.target.text] = timing
    evaluation.originals[pair.key] = maps[inputs.rand_pos]
    evaluation.conservation.append(tagged(pd.DataFrame({"conservation_error": errors}), pair,
                                          inputs, classes))
    return maps


def perturbation_phase(evaluation: Evaluation, scores: dict, settings) -> None:
    """Region perturbation of every pair's maps at once: a curve and an AOPC per subject. The
    anchor class's logit is tracked in every target mode."""
    inputs, p = evaluation.inputs, settings.perturbation
    n = len(inputs.rows)
    inputs_needed = len(evaluation.pairs) * n * p.steps
    what = (f"removing the most relevant {p.patch}³-voxel patches first, {p.patches_per_step} per "
            f"step for {p.steps} steps, from {n} subjects × {len(evaluation.pairs)} pairs: at most "
            f"{inputs_needed} perturbed inputs, each distinct one predicted once, "
            f"{p.batch_size} per forward pass")
    labels = [pair_label(pair, settings) for pair in evaluation.pairs]

    def advance(n, request, total):  # the bar counts the distinct inputs, known once planned
        run.bar.total = total
        run.at(labels[request])
        run.update(n)

    t = time.perf_counter()
    with phase("perturbation (AOPC)", what, inputs_needed, evaluation.phase_seconds,
               settings.progress, unit="input") as run:
        results = region_perturbations(
            inputs.predict, inputs.x,
            [(scores[pair.key], evaluation.classes[pair.key]) for pair in evaluation.pairs],
            inputs.baseline, p.patch, p.steps, p.patches_per_step, batch_size=p.batch_size,
            intact=inputs.logits, progress=advance)
    per_map = (time.perf_counter() - t) / (len(evaluation.pairs) * n)
    for pair, res in zip(evaluation.pairs, results):
        evaluation.timings[pair.method]["targets"][pair.target.text]["perturbation_s_per_map"] = \
            per_map
        _record_curves(evaluation, pair, res)


def _record_curves(evaluation: Evaluation, pair: ScoredPair, res) -> None:
    """One pair's perturbation curves and AOPC per subject."""
    inputs = evaluation.inputs
    steps = np.arange(res.drops.shape[1])
    for i, subject in enumerate(inputs.subject_ids):
        evaluation.curves.append(pd.DataFrame({
            "subject_id": subject, "method": pair.method, "target": pair.target.text,
            "step": steps, "fraction_removed": res.fraction_removed, "logit": res.logits[i],
            "drop": res.drops[i]}))
    evaluation.aopc.append(tagged(pd.DataFrame({"aopc": res.aopc}), pair, inputs,
                                  evaluation.classes[pair.key]))


def localise(maps: np.ndarray, inputs: ScoringInputs, settings) -> pd.DataFrame:
    """Per subject: mass ratio and AUC against the ground truth, and the control ratio."""
    loc, truth = settings.localisation, inputs.truth
    scores = localisation_scores(maps, truth.mask, inputs.brain, loc.relevance, loc.max_voxels,
                                 settings.seed)
    if truth.control is not None:
        scores["control_ratio"] = localisation_scores(maps, truth.control, inputs.brain,
                                                      loc.relevance, with_auc=False)["mass_ratio"]
    return scores

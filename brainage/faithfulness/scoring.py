"""Score every explanation method on the same subjects: perturbation, localisation, randomisation.

Each method explains the subjects once (a random map is the floor); its maps are scored by region
perturbation and against the ground truth, the first ``randomisation.subjects`` of them are kept
for the randomisation cascade, and Grad-CAM is profiled across conv layers (seed 002).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from brainage.faithfulness.inputs import ScoringInputs, gradcam_layers
from brainage.faithfulness.localisation import localisation_scores
from brainage.faithfulness.perturbation import random_maps, region_perturbation
from brainage.faithfulness.profiles import map_profile
from brainage.faithfulness.randomisation import cascading_randomisation, insensitive_methods

RANDOM = "random"  # name of the random-map floor
# Methods drawn beside Grad-CAM's layers in the methods figure, where evaluated.
COMPARED = ("dtd", "lrp_composite", "guided_backprop")


@dataclass
class Evaluation:
    """Per-subject results of scoring every method, before they are summarised into tables."""

    methods: list  # names scored, the floor last
    inputs: ScoringInputs
    curves: list = field(default_factory=list)  # perturbation curves, a DataFrame per subject
    aopc: list = field(default_factory=list)  # {subject_id, bin, method, aopc}
    localisation: list = field(default_factory=list)  # a DataFrame per method
    originals: dict = field(default_factory=dict)  # method -> maps of the randomisation subjects
    timings: dict = field(default_factory=dict)
    randomisation: pd.DataFrame = field(default_factory=pd.DataFrame)
    gradcam_layers: pd.DataFrame = field(default_factory=pd.DataFrame)
    compare_maps: dict = field(default_factory=dict)  # the methods figure's maps of one subject
    flagged: dict = field(default_factory=dict)  # method -> Spearman at flag_after

    def summary(self, settings, explainers: dict) -> dict:
        """What ``evaluate.json`` records about the scoring (settings as read, cascade, notes)."""
        inputs, truth = self.inputs, self.inputs.truth
        return {
            "methods": self.methods, "explainers": explainers, "target": settings.target,
            "n_subjects": int(len(inputs.rows)), "subjects": list(inputs.subject_ids),
            "randomisation_subjects": list(inputs.subject_ids[inputs.rand_pos]),
            "perturbation": dataclasses.asdict(settings.perturbation),
            "randomisation": {**dataclasses.asdict(settings.randomisation),
                              "flag_after": inputs.flag_after,
                              "cascade": [g for g, _ in inputs.groups]},
            "localisation": {**dataclasses.asdict(settings.localisation),
                             "ground_truth_note": truth.note,
                             "mask_share": (float(truth.mask[inputs.brain].mean())
                                            if truth.mask is not None else None)},
            "flagged": self.flagged, "timings": self.timings,
        }


def explain_maps(analyzer, x: np.ndarray, classes: np.ndarray, batch_size: int) -> np.ndarray:
    """Maps of a fixed class per input (the class explained for the trained network)."""
    return np.concatenate([
        np.asarray(analyzer.explain(x[i:i + batch_size], target="true",
                                    labels=classes[i:i + batch_size]).maps)
        for i in range(0, len(x), batch_size)])


def score_methods(model, analyzers: dict, explainers: dict, inputs: ScoringInputs,
                  settings) -> Evaluation:
    """Every check on every method (``explainers``: their parameters, to re-explain randomised
    copies of ``model``); ``settings`` is a :class:`~brainage.faithfulness.settings.ScoringSettings`."""
    from tqdm.auto import tqdm

    names = list(analyzers) + ([RANDOM] if settings.random_map else [])
    evaluation = Evaluation(names, inputs)
    with tqdm(total=len(names) * len(inputs.rows), desc="perturbation", unit="map",
              disable=not settings.progress) as bar:
        for name in names:
            score_maps(evaluation, name, analyzers.get(name), settings, bar)
    r = settings.randomisation
    if r.enabled:
        evaluation.randomisation = randomisation_table(model, explainers, evaluation, settings)
        evaluation.flagged = insensitive_methods(evaluation.randomisation, inputs.flag_after,
                                                 r.flag_spearman)
    if settings.gradcam_layers.enabled:
        evaluation.gradcam_layers, evaluation.compare_maps = gradcam_layer_profiles(
            model, evaluation, settings)
    return evaluation


def score_maps(evaluation: Evaluation, name: str, analyzer, settings, bar) -> None:
    """Explain the subjects with one method (or draw the random floor) and score its maps."""
    inputs = evaluation.inputs
    t = time.perf_counter()
    if name == RANDOM:
        maps = np.stack([random_maps(inputs.x.shape[1:], settings.seed + int(row))
                         for row in inputs.rows])
    else:
        maps = explain_maps(analyzer, inputs.x, inputs.classes, settings.batch_size)
    evaluation.timings[name] = {"explain_s_per_map": (time.perf_counter() - t) / len(inputs.rows)}
    evaluation.originals[name] = maps[inputs.rand_pos]
    if settings.perturbation.enabled:
        t = time.perf_counter()
        perturb_subjects(evaluation, name, maps, settings.perturbation, bar)
        evaluation.timings[name]["perturbation_s_per_subject"] = \
            (time.perf_counter() - t) / len(inputs.rows)
    else:
        bar.update(len(inputs.rows))
    if inputs.truth.mask is not None:
        evaluation.localisation.append(localise(name, maps, inputs, settings))


def perturb_subjects(evaluation: Evaluation, name: str, maps: np.ndarray, p, bar) -> None:
    """Region perturbation of each subject by its map: a curve and an AOPC per subject."""
    inputs = evaluation.inputs
    ids, bins = inputs.subject_ids, inputs.subjects["bin"].to_numpy()
    for i in range(len(inputs.rows)):
        one = slice(i, i + 1)
        res = region_perturbation(inputs.predict, inputs.x[one], maps[one], inputs.classes[one],
                                  inputs.baseline[one], p.patch, p.steps, p.patches_per_step)
        evaluation.curves.append(pd.DataFrame({
            "subject_id": ids[i], "method": name, "step": np.arange(res.drops.shape[1]),
            "fraction_removed": res.fraction_removed, "logit": res.logits[0],
            "drop": res.drops[0]}))
        evaluation.aopc.append({"subject_id": ids[i], "bin": int(bins[i]), "method": name,
                                "aopc": float(res.aopc[0])})
        bar.update(1)


def localise(name: str, maps: np.ndarray, inputs: ScoringInputs, settings) -> pd.DataFrame:
    """Per subject: mass ratio and AUC against the ground truth, and the control ratio."""
    loc, truth = settings.localisation, inputs.truth
    scores = localisation_scores(maps, truth.mask, inputs.brain, loc.relevance, loc.max_voxels,
                                 settings.seed)
    if truth.control is not None:
        scores["control_ratio"] = localisation_scores(maps, truth.control, inputs.brain,
                                                      loc.relevance, with_auc=False)["mass_ratio"]
    scores.insert(0, "method", name)
    scores.insert(0, "bin", inputs.subjects["bin"].to_numpy())
    scores.insert(0, "subject_id", inputs.subject_ids)
    return scores


def randomisation_table(model, explainers: dict, evaluation: Evaluation,
                        settings) -> pd.DataFrame:
    """Cascading randomisation of every method on the randomisation subjects (rows per subject
    and step)."""
    from tqdm.auto import tqdm

    from brainage.relevance import analyzer_from_config

    inputs, r = evaluation.inputs, settings.randomisation
    x, classes = inputs.x[inputs.rand_pos], inputs.classes[inputs.rand_pos]
    ids = inputs.subject_ids[inputs.rand_pos]
    tables = []
    for name in tqdm(list(explainers), desc="randomisation", unit="method",
                     disable=not settings.progress):
        def explain_fn(m, batch, params=explainers[name]):
            return explain_maps(analyzer_from_config(m, params), batch, classes, settings.batch_size)

        t = time.perf_counter()
        table = cascading_randomisation(
            model, x, explain_fn, seed=settings.seed, mask=inputs.brain, signed=r.signed,
            max_voxels=r.max_voxels, original=evaluation.originals[name], groups=inputs.groups)
        evaluation.timings[name]["randomisation_s"] = time.perf_counter() - t
        table.insert(0, "method", name)
        table.insert(1, "subject_id", ids[table["input"]])
        tables.append(table.drop(columns="input"))
    return pd.concat(tables, ignore_index=True)


def gradcam_layer_profiles(model, evaluation: Evaluation, settings) -> tuple[pd.DataFrame, dict]:
    """Grad-CAM at several conv layers: how local and how general its maps are (seed 002).

    Returns the per-layer profile (:func:`~brainage.faithfulness.profiles.map_profile`) and, for
    the methods figure, the first randomisation subject's maps of the compared methods and of every
    Grad-CAM layer.
    """
    from brainage.relevance import make_analyzer

    inputs = evaluation.inputs
    layers = gradcam_layers(model, settings.gradcam_layers.layers)
    compare = {name: evaluation.originals[name][0] for name in COMPARED
               if name in evaluation.originals}
    rows = []
    for layer in layers:
        maps = explain_maps(make_analyzer(model, "gradcam", layer=layer), inputs.x, inputs.classes,
                            settings.batch_size)
        rows.append({"layer": layer, "n_subjects": len(inputs.x),
                     **map_profile(maps, inputs.brain, seed=settings.seed)})
        compare[f"gradcam {layer}"] = maps[inputs.rand_pos[0]]
    return pd.DataFrame(rows), compare

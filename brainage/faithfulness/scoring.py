"""Score every (method, target mode) pair on the same subjects: every check of the scorecard.

Each pair explains the subjects once (a random map per target mode is the floor); its maps are
scored by region perturbation (all subjects and steps batched through one compiled forward pass),
against the ground truth and for conservation; the youngest- and oldest-class maps of a few
subjects are compared; the first ``randomisation.subjects`` maps are kept for the randomisation
cascade, which re-explains every pair on one randomised copy per step; Grad-CAM is profiled across
conv layers (seed 002).
"""
from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from brainage.errors import EvaluateError
from brainage.faithfulness.class_maps import map_correlations
from brainage.faithfulness.conservation import (
    REFERENCE,
    conservation_errors,
    identity_of,
    reference_outputs,
)
from brainage.faithfulness.inputs import ScoringInputs, gradcam_layers
from brainage.faithfulness.localisation import localisation_scores
from brainage.faithfulness.perturbation import random_maps, region_perturbation
from brainage.faithfulness.profiles import map_profile
from brainage.faithfulness.randomisation import cascading_randomisation, insensitive_methods
from brainage.faithfulness.targets import ScoredPair, scored_pairs

RANDOM = "random"  # name of the random-map floor
# Methods drawn beside Grad-CAM's layers in the methods figure, where evaluated.
COMPARED = ("dtd", "lrp_composite", "guided_backprop")


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
        }


def explain_maps(analyzer, x: np.ndarray, target, classes: np.ndarray, batch_size: int,
                 identity: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maps of a fixed class per input, and their conservation errors (NaN without an identity).

    ``target`` is a :class:`~brainage.faithfulness.targets.TargetMode` (its fixed-class form is
    explained, ``classes`` as the labels).
    """
    mode = target.fixed_class_target
    # Integrated gradients reports f(x): its f(x_ref) is computed here. Reference analyzers
    # (DeepLIFT, reference-rooted DTD) report f(x) − f(x_ref) themselves.
    reference = (reference_outputs(analyzer, mode, classes)
                 if identity == REFERENCE and hasattr(analyzer, "baseline") else None)
    maps, errors = [], []
    for i in range(0, len(x), batch_size):
        explanation = analyzer.explain(x[i:i + batch_size], target=mode,
                                       labels=classes[i:i + batch_size])
        maps.append(np.asarray(explanation.maps))
        part = None if reference is None else reference[i:i + batch_size]
        errors.append(conservation_errors(identity, explanation, part))
    return np.concatenate(maps), np.concatenate(errors)


def check_pairs(analyzers: dict, inputs: ScoringInputs, settings) -> None:
    """Explain one subject in every target mode with a suffix, before slow work: a target the
    relevance engine does not accept is refused now, naming the pair."""
    for pair in scored_pairs(analyzers, settings.targets, settings.pairs):
        if not pair.target.suffix:
            continue
        classes = pair.target.classes(inputs.logits[:1], inputs.labels[:1])
        try:
            analyzers[pair.method].explain(inputs.x[:1], target=pair.target.fixed_class_target,
                                           labels=classes)
        except ValueError as exc:
            raise EvaluateError(f"{pair.method}:{pair.target.text}: the relevance engine refuses "
                                f"this target mode: {exc}") from exc


def score_methods(model, analyzers: dict, explainers: dict, inputs: ScoringInputs,
                  settings) -> Evaluation:
    """Every check on every (method, target mode) pair (``explainers``: the methods' parameters,
    to re-explain randomised copies of ``model``); ``settings`` is a
    :class:`~brainage.faithfulness.settings.ScoringSettings`."""
    from tqdm.auto import tqdm

    pairs = scored_pairs(analyzers, settings.targets, settings.pairs)
    floors = [ScoredPair(RANDOM, mode) for mode in settings.targets] if settings.random_map else []
    evaluation = Evaluation(pairs + floors, inputs)
    with tqdm(total=len(evaluation.pairs) * len(inputs.rows), desc="maps", unit="map",
              disable=not settings.progress) as bar:
        for pair in evaluation.pairs:
            score_pair(evaluation, pair, analyzers.get(pair.method), settings)
            bar.update(len(inputs.rows))
    if settings.randomisation.enabled:
        evaluation.randomisation = randomisation_table(model, explainers, evaluation, settings)
        table = evaluation.randomisation
        evaluation.flagged = insensitive_methods(
            table.assign(method=table["method"] + ":" + table["target"].astype(str)),
            inputs.flag_after, settings.randomisation.flag_spearman)
    if settings.gradcam_layers.enabled:
        evaluation.gradcam_layers, evaluation.compare_maps = gradcam_layer_profiles(
            model, evaluation, settings)
    return evaluation


def score_pair(evaluation: Evaluation, pair: ScoredPair, analyzer, settings) -> None:
    """Explain the subjects with one pair (or draw the random floor) and score its maps."""
    inputs = evaluation.inputs
    classes = pair.target.classes(inputs.logits, inputs.labels)
    evaluation.classes[pair.key] = classes
    t = time.perf_counter()
    if pair.method == RANDOM:
        maps = np.stack([random_maps(inputs.x.shape[1:], settings.seed + int(row))
                         for row in inputs.rows])
        errors = np.full(len(maps), np.nan)
    else:
        maps, errors = explain_maps(analyzer, inputs.x, pair.target, classes,
                                    settings.batch_size, identity_of(analyzer))
    timing = {"explain_s_per_map": (time.perf_counter() - t) / len(inputs.rows)}
    evaluation.timings.setdefault(pair.method, {"targets": {}})["targets"][pair.target.text] = timing
    evaluation.originals[pair.key] = maps[inputs.rand_pos]
    evaluation.conservation.append(_tagged(pd.DataFrame({"conservation_error": errors}), pair,
                                           inputs, classes))
    if settings.perturbation.enabled:
        t = time.perf_counter()
        perturb_subjects(evaluation, pair, maps, classes, settings.perturbation)
        timing["perturbation_s_per_map"] = (time.perf_counter() - t) / len(inputs.rows)
    if inputs.truth.mask is not None:
        evaluation.localisation.append(_tagged(localise(maps, inputs, settings), pair, inputs,
                                               classes))
    # One output (an age regressor) has no youngest and oldest class: the check does not apply.
    if settings.class_maps.enabled and pair.method != RANDOM and inputs.logits.shape[1] > 1:
        evaluation.class_maps.append(compare_class_maps(analyzer, pair, inputs, settings))


def _tagged(table: pd.DataFrame, pair: ScoredPair, inputs: ScoringInputs,
            classes: np.ndarray) -> pd.DataFrame:
    """``table`` (a row per subject) with ``subject_id, bin, method, target, class`` in front."""
    front = pd.DataFrame({"subject_id": inputs.subject_ids, "bin": inputs.labels,
                          "method": pair.method, "target": pair.target.text, "class": classes})
    return pd.concat([front, table.reset_index(drop=True)], axis=1)


def perturb_subjects(evaluation: Evaluation, pair: ScoredPair, maps: np.ndarray,
                     classes: np.ndarray, p) -> None:
    """Region perturbation of every subject by its map, batched across subjects and steps: a
    curve and an AOPC per subject. The anchor class's logit is tracked in every target mode."""
    inputs = evaluation.inputs
    res = region_perturbation(inputs.predict, inputs.x, maps, classes, inputs.baseline, p.patch,
                              p.steps, p.patches_per_step, batch_size=p.batch_size)
    steps = np.arange(res.drops.shape[1])
    for i, subject in enumerate(inputs.subject_ids):
        evaluation.curves.append(pd.DataFrame({
            "subject_id": subject, "method": pair.method, "target": pair.target.text,
            "step": steps, "fraction_removed": res.fraction_removed, "logit": res.logits[i],
            "drop": res.drops[i]}))
    evaluation.aopc.append(_tagged(pd.DataFrame({"aopc": res.aopc}), pair, inputs, classes))


def localise(maps: np.ndarray, inputs: ScoringInputs, settings) -> pd.DataFrame:
    """Per subject: mass ratio and AUC against the ground truth, and the control ratio."""
    loc, truth = settings.localisation, inputs.truth
    scores = localisation_scores(maps, truth.mask, inputs.brain, loc.relevance, loc.max_voxels,
                                 settings.seed)
    if truth.control is not None:
        scores["control_ratio"] = localisation_scores(maps, truth.control, inputs.brain,
                                                      loc.relevance, with_auc=False)["mass_ratio"]
    return scores


def compare_class_maps(analyzer, pair: ScoredPair, inputs: ScoringInputs,
                       settings) -> pd.DataFrame:
    """The youngest- and the oldest-class maps of the class-map subjects, correlated (Pearson r
    over the brain voxels); a row per subject."""
    pos = inputs.class_pos
    x, n_classes = inputs.x[pos], inputs.logits.shape[1]
    try:
        young, old = [explain_maps(analyzer, x, pair.target, np.full(len(pos), k),
                                   settings.batch_size)[0] for k in (0, n_classes - 1)]
    except ValueError:  # a mode the engine refuses for these classes (e.g. 0-vs-0): undefined
        young = old = np.zeros_like(x)
    r = map_correlations(young, old, inputs.brain)
    return pd.DataFrame({"subject_id": inputs.subject_ids[pos], "bin": inputs.labels[pos],
                         "method": pair.method, "target": pair.target.text,
                         "classes": f"0 vs {n_classes - 1}", "pearson_r": r,
                         "abs_pearson_r": np.abs(r)})


def randomisation_table(model, explainers: dict, evaluation: Evaluation,
                        settings) -> pd.DataFrame:
    """Cascading randomisation of every pair on the randomisation subjects (rows per pair,
    subject and step): one randomised copy per step, one analyzer per method and step."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import analyzer_from_config

    inputs, r = evaluation.inputs, settings.randomisation
    by_method = defaultdict(list)
    for pair in evaluation.pairs:
        if pair.method != RANDOM:
            by_method[pair.method].append(pair)
    seconds = defaultdict(float)

    def explain_step(m, x):
        maps = {}
        for method, pairs in by_method.items():
            t = time.perf_counter()
            analyzer = analyzer_from_config(m, explainers[method])
            for pair in pairs:
                classes = evaluation.classes[pair.key][inputs.rand_pos]
                maps[pair.key] = explain_maps(analyzer, x, pair.target, classes,
                                              settings.batch_size)[0]
            seconds[method] += time.perf_counter() - t
        return maps

    originals = {pair.key: evaluation.originals[pair.key] for ps in by_method.values() for pair in ps}
    table = cascading_randomisation(
        model, inputs.x[inputs.rand_pos], explain_step, seed=settings.seed, mask=inputs.brain,
        signed=r.signed, max_voxels=r.max_voxels, original=originals, groups=inputs.groups)
    for method, s in seconds.items():
        evaluation.timings[method]["randomisation_s"] = s
    keys = list(originals)
    table.insert(0, "method", [k[0] for k in table["key"]])
    table.insert(1, "target", [k[1] for k in table["key"]])
    table.insert(2, "subject_id", inputs.subject_ids[inputs.rand_pos][table["input"]])
    table["order"] = [keys.index(k) for k in table["key"]]
    table = table.sort_values(["order", "step", "input"], kind="stable")
    return table.drop(columns=["key", "input", "order"]).reset_index(drop=True)


def gradcam_layer_profiles(model, evaluation: Evaluation, settings) -> tuple[pd.DataFrame, dict]:
    """Grad-CAM at several conv layers: how local and how general its maps are (seed 002).

    Returns the per-layer profile (:func:`~brainage.faithfulness.profiles.map_profile`) and, for
    the methods figure, the first randomisation subject's maps of the compared methods and of every
    Grad-CAM layer (all in the first target mode).
    """
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import make_analyzer

    inputs, mode = evaluation.inputs, settings.targets[0]
    classes = mode.classes(inputs.logits, inputs.labels)
    layers = gradcam_layers(model, settings.gradcam_layers.layers)
    compare = {name: evaluation.originals[(name, mode.text)][0] for name in COMPARED
               if (name, mode.text) in evaluation.originals}
    rows = []
    for layer in layers:
        maps = explain_maps(make_analyzer(model, "gradcam", layer=layer), inputs.x, mode, classes,
                            settings.batch_size)[0]
        rows.append({"layer": layer, "n_subjects": len(inputs.x),
                     **map_profile(maps, inputs.brain, seed=settings.seed)})
        compare[f"gradcam {layer}"] = maps[inputs.rand_pos[0]]
    return pd.DataFrame(rows), compare

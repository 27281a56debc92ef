"""The phases that re-explain the subjects after the maps: class maps, randomisation, Grad-CAM layers.

* **class maps**: the youngest- and the oldest-class maps of a few subjects, per pair, correlated;
* **randomisation**: the cascade (Adebayo et al. 2018) re-explains every pair on one randomised
  copy of the network per step (one analyzer per method and step) and compares with the trained
  network's maps of the randomisation subjects (kept by the maps phase, not explained again); an
  ensemble's copy is a copy of every member, explained by the ensemble's analyzer of the copies;
* **Grad-CAM layers**: Grad-CAM at several conv layers, profiled (seed 002).

Each is logged, timed and shown with a progress bar (:mod:`brainage.faithfulness.phases`).
"""
from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import pandas as pd

from brainage.ensemble.one_model import EnsembleAnalyzer, EnsembleModel
from brainage.faithfulness.class_maps import map_correlations
from brainage.faithfulness.explained import RANDOM, explain_maps
from brainage.faithfulness.inputs import gradcam_layers
from brainage.faithfulness.phases import phase
from brainage.faithfulness.profiles import map_profile
from brainage.faithfulness.randomisation import cascading_randomisation, insensitive_methods

# Methods drawn beside Grad-CAM's layers in the methods figure, where evaluated.
COMPARED = ("dtd", "lrp_composite", "guided_backprop")


def pair_label(pair, settings) -> str:
    """How a progress bar names a pair: the method, with its target mode where several are
    scored."""
    single = len(settings.targets) == 1 and not settings.pairs
    return pair.method if single else f"{pair.method}:{pair.target.text}"


def tagged(table: pd.DataFrame, pair, inputs, classes: np.ndarray) -> pd.DataFrame:
    """``table`` (a row per subject) with ``subject_id, bin, method, target, class`` in front."""
    front = pd.DataFrame({"subject_id": inputs.subject_ids, "bin": inputs.labels,
                          "method": pair.method, "target": pair.target.text, "class": classes})
    return pd.concat([front, table.reset_index(drop=True)], axis=1)


def class_map_phase(evaluation, analyzers: dict, settings) -> None:
    """The youngest- and oldest-class maps of the class-map subjects, for every pair."""
    inputs = evaluation.inputs
    pairs = [pair for pair in evaluation.pairs if pair.method != RANDOM]
    n = len(inputs.class_pos)
    what = (f"explaining the youngest (0) and the oldest ({inputs.logits.shape[1] - 1}) class on "
            f"{n} subjects with each of {len(pairs)} pairs ({2 * n * len(pairs)} maps) and "
            "correlating the two maps of each subject")
    with phase("class maps", what, 2 * n * len(pairs), evaluation.phase_seconds,
               settings.progress) as run:
        for pair in pairs:
            run.at(pair_label(pair, settings))
            evaluation.class_maps.append(compare_class_maps(analyzers[pair.method], pair, inputs,
                                                            settings, run.update))


def compare_class_maps(analyzer, pair, inputs, settings, progress=None) -> pd.DataFrame:
    """The youngest- and the oldest-class maps of the class-map subjects, correlated (Pearson r
    over the brain voxels); a row per subject (``progress(n)`` after each batch of maps)."""
    pos = inputs.class_pos
    x, n_classes = inputs.x[pos], inputs.logits.shape[1]
    done = [0]

    def count(n):
        done[0] += n
        if progress is not None:
            progress(n)

    try:
        young, old = [explain_maps(analyzer, x, pair.target, np.full(len(pos), k),
                                   settings.batch_size, progress=count)[0]
                      for k in (0, n_classes - 1)]
    except ValueError:  # a mode the engine refuses for these classes (e.g. 0-vs-0): undefined
        young = old = np.zeros_like(x)
        count(2 * len(pos) - done[0])
    r = map_correlations(young, old, inputs.brain)
    return pd.DataFrame({"subject_id": inputs.subject_ids[pos], "bin": inputs.labels[pos],
                         "method": pair.method, "target": pair.target.text,
                         "classes": f"0 vs {n_classes - 1}", "pearson_r": r,
                         "abs_pearson_r": np.abs(r)})


def randomisation_phase(model, explainers: dict, evaluation, settings) -> None:
    """The cascade's table (:func:`randomisation_table`) and the pairs it flags."""
    inputs = evaluation.inputs
    n_pairs = sum(pair.method != RANDOM for pair in evaluation.pairs)
    n, steps = len(inputs.rand_pos), len(inputs.groups)
    what = (f"randomising the network's weights top down in {steps} steps "
            f"({', '.join(g for g, _ in inputs.groups)}); after each, re-explaining {n} subjects "
            f"with each of {n_pairs} pairs and comparing with the trained network's maps "
            f"(Spearman, SSIM): {steps * n * n_pairs} maps")
    with phase("randomisation", what, steps * n * n_pairs, evaluation.phase_seconds,
               settings.progress) as run:
        table = randomisation_table(model, explainers, evaluation, settings, run)
    evaluation.randomisation = table
    evaluation.flagged = insensitive_methods(
        table.assign(method=table["method"] + ":" + table["target"].astype(str)),
        inputs.flag_after, settings.randomisation.flag_spearman)


def randomisation_table(model, explainers: dict, evaluation, settings, run=None) -> pd.DataFrame:
    """Cascading randomisation of every pair on the randomisation subjects (rows per pair,
    subject and step): one randomised copy per step, one analyzer per method and step
    (:func:`method_analyzer`)."""
    inputs, r = evaluation.inputs, settings.randomisation
    by_method = defaultdict(list)
    for pair in evaluation.pairs:
        if pair.method != RANDOM:
            by_method[pair.method].append(pair)
    seconds, step = defaultdict(float), [0]

    def explain_step(m, x):
        maps, (label, _) = {}, inputs.groups[step[0]]
        step[0] += 1
        for method, pairs in by_method.items():
            if run is not None:
                run.at(f"{method} (step {step[0]}/{len(inputs.groups)}: {label})")
            t = time.perf_counter()
            analyzer = method_analyzer(m, explainers[method])
            for pair in pairs:
                classes = evaluation.classes[pair.key][inputs.rand_pos]
                maps[pair.key] = explain_maps(analyzer, x, pair.target, classes,
                                              settings.batch_size)[0]
            seconds[method] += time.perf_counter() - t
        return maps

    originals = {pair.key: evaluation.originals[pair.key] for ps in by_method.values() for pair in ps}
    table = cascading_randomisation(
        model, inputs.x[inputs.rand_pos], explain_step, seed=settings.seed, mask=inputs.brain,
        signed=r.signed, max_voxels=r.max_voxels, original=originals, groups=inputs.groups,
        progress=None if run is None else run.update)
    for method, s in seconds.items():
        evaluation.timings[method]["randomisation_s"] = s
    keys = list(originals)
    table.insert(0, "method", [k[0] for k in table["key"]])
    table.insert(1, "target", [k[1] for k in table["key"]])
    table.insert(2, "subject_id", inputs.subject_ids[inputs.rand_pos][table["input"]])
    table["order"] = [keys.index(k) for k in table["key"]]
    table = table.sort_values(["order", "step", "input"], kind="stable")
    return table.drop(columns=["key", "input", "order"]).reset_index(drop=True)


def method_analyzer(model, params):
    """A method's analyzer of ``model`` from its parameters; of an ensemble
    (:class:`~brainage.ensemble.one_model.EnsembleModel`), the members' analyzers as one, each
    from that member's own parameters (``params``: one per member, their references resolved on
    the member's own training split)."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import analyzer_from_config

    if isinstance(model, EnsembleModel):
        return EnsembleAnalyzer(tuple(analyzer_from_config(member, p)
                                      for member, p in zip(model.models, params, strict=True)),
                                model.regression)
    return analyzer_from_config(model, params)


def gradcam_phase(model, evaluation, settings) -> None:
    """Grad-CAM at several conv layers: how local and how general its maps are (seed 002).

    Sets the per-layer profile (:func:`~brainage.faithfulness.profiles.map_profile`) and, for
    the methods figure, the first randomisation subject's maps of the compared methods and of every
    Grad-CAM layer (all in the first target mode).
    """
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import make_analyzer

    inputs, mode = evaluation.inputs, settings.targets[0]
    classes = inputs.classes(mode)
    layers = gradcam_layers(model, settings.gradcam_layers.layers)
    compare = {name: evaluation.originals[(name, mode.text)][0] for name in COMPARED
               if (name, mode.text) in evaluation.originals}
    rows, n = [], len(inputs.x)
    what = (f"Grad-CAM of {n} subjects at {len(layers)} conv layers ({', '.join(layers)}): how "
            "local and how general its maps are")
    with phase("Grad-CAM layers", what, n * len(layers), evaluation.phase_seconds,
               settings.progress) as run:
        for layer in layers:
            run.at(layer)
            maps = explain_maps(make_analyzer(model, "gradcam", layer=layer), inputs.x, mode,
                                classes, settings.batch_size, progress=run.update)[0]
            rows.append({"layer": layer, "n_subjects": n,
                         **map_profile(maps, inputs.brain, seed=settings.seed)})
            compare[f"gradcam {layer}"] = maps[inputs.rand_pos[0]]
    evaluation.gradcam_layers, evaluation.compare_maps = pd.DataFrame(rows), compare

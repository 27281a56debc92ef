"""The evaluate stage's phases on a tiny network: each logs what it does and shows a bar named by
phase and method; perturbation batched across pairs scores as the per-pair loop did; the cached
SSIM is scikit-image's."""
import logging

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from brainage.faithfulness import perturbation as pert
from brainage.faithfulness.ground_truth import GroundTruth
from brainage.faithfulness.inputs import ScoringInputs
from brainage.faithfulness.randomisation import _normalised, _Similarity, cascade_groups
from brainage.faithfulness.scoring import score_methods
from brainage.faithfulness.settings import ScoringSettings
from tests.builders import REPO

SHAPE = (8, 8, 8, 1)
METHODS = ["dtd", "gradient_x_input", "gradcam"]


@pytest.fixture(scope="module")
def tiny():
    """A tiny block/dense/logits network, six subjects and the analyzers of three methods."""
    import keras

    from brainage.relevance import analyzer_from_config

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input(SHAPE), keras.layers.Conv3D(2, 3, activation="relu", name="block1_conv_a"),
        keras.layers.Conv3D(2, 3, activation="relu", name="block1_conv_b"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(4, activation="relu", name="dense1"), keras.layers.Dense(3, name="logits")])
    x = np.random.default_rng(0).uniform(0, 1, (6,) + SHAPE).astype(np.float32)
    explainers = {"dtd": {"name": "dtd"}, "gradient_x_input": {"name": "gradient_x_input"},
                  "gradcam": {"name": "gradcam", "layer": "block1_conv_b"}}
    analyzers = {m: analyzer_from_config(model, p) for m, p in explainers.items()}
    return model, x, explainers, analyzers


def _settings(*overrides) -> ScoringSettings:
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("evaluate", overrides=[
            f"explainer=[{','.join(METHODS)}]", "perturbation.patch=2", "perturbation.steps=4",
            "perturbation.patches_per_step=3", "perturbation.batch_size=5",
            "randomisation.subjects=2", "class_maps.subjects=2", "localisation.max_voxels=100",
            "randomisation.max_voxels=100", *overrides])
    return ScoringSettings.from_cfg(cfg)


def _inputs(model, x, settings) -> ScoringInputs:
    predict = pert.logit_function(model, settings.perturbation.batch_size)
    logits = predict(x)
    labels = np.array([0, 1, 2, 0, 1, 2])
    mask = np.zeros(SHAPE[:-1], bool)
    mask[2:5, 2:5, 2:5] = True
    control = np.zeros(SHAPE[:-1], bool)
    control[6:, 6:, 6:] = True
    groups = cascade_groups(model, "block")
    return ScoringInputs(
        np.arange(6), pd.DataFrame({"subject_id": [f"sub-{i}" for i in range(6)], "bin": labels}),
        x, logits, labels, predict, pert.make_baseline(x, "mean", x.mean(axis=0)),
        np.ones(SHAPE[:-1], bool), GroundTruth(mask, control, "test"), np.array([0, 1]),
        np.array([0, 2]), groups, "dense1")


def test_every_phase_says_what_it_does_and_shows_a_bar(tiny, caplog, capsys):
    model, x, explainers, analyzers = tiny
    settings = _settings("progress=true")
    with caplog.at_level(logging.INFO, logger="brainage.evaluate"):
        evaluation = score_methods(model, analyzers, explainers, _inputs(model, x, settings),
                                   settings)
    logged = [r.getMessage() for r in caplog.records if r.name == "brainage.evaluate"]
    phases = ["maps", "perturbation (AOPC)", "class maps", "randomisation", "Grad-CAM layers"]
    assert [m.split(":")[0] for m in logged] == phases
    assert "localisation against the ground truth" in logged[0]
    err = capsys.readouterr().err
    for name in phases:
        assert f"{name}:" in err, name
    assert "perturbation (AOPC): dtd" in err or "perturbation (AOPC): gradient_x_input" in err
    assert "randomisation: dtd (step" in err
    assert set(evaluation.phase_seconds) == {*phases, "localisation (within maps)"}


def test_phases_are_silent_without_progress(tiny, capsys):
    model, x, explainers, analyzers = tiny
    settings = _settings("progress=false", "randomisation.enabled=false",
                         "gradcam_layers.enabled=false", "class_maps.enabled=false")
    score_methods(model, analyzers, explainers, _inputs(model, x, settings), settings)
    assert "maps:" not in capsys.readouterr().err


def test_batched_perturbation_gives_the_per_pair_aopc(tiny):
    """Every pair's maps perturbed together (shared intact outputs, shared inputs predicted once)
    give each pair's curves and AOPC of region perturbation run pair by pair."""
    model, x, explainers, analyzers = tiny
    settings = _settings("progress=false", "randomisation.enabled=false",
                         "gradcam_layers.enabled=false", "class_maps.enabled=false")
    inputs = _inputs(model, x, settings)
    evaluation = score_methods(model, analyzers, explainers, inputs, settings)
    aopc = pd.concat(evaluation.aopc, ignore_index=True)
    p = settings.perturbation
    for pair in evaluation.pairs:
        classes = evaluation.classes[pair.key]
        if pair.method == "random":
            maps = np.stack([pert.random_maps(x.shape[1:], settings.seed + r) for r in range(6)])
        else:
            maps = np.asarray(analyzers[pair.method].explain(x, target="true", labels=classes).maps)
        alone = pert.region_perturbation(inputs.predict, x, maps, classes, inputs.baseline,
                                         p.patch, p.steps, p.patches_per_step, p.batch_size)
        got = aopc[aopc["method"] == pair.method]["aopc"].to_numpy()
        np.testing.assert_allclose(got, alone.aopc, rtol=1e-5, atol=1e-6)


def test_shared_perturbed_inputs_are_predicted_once(rng):
    """Two maps ranking the patches alike (one a multiple of the other) need the inputs of one;
    the intact outputs, when given, are not predicted again."""
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(3)])
    forward = pert.logit_function(model, 64)
    x = rng.uniform(0, 1, (3,) + SHAPE).astype(np.float32)
    maps = rng.standard_normal(x.shape).astype(np.float32)
    other = rng.standard_normal(x.shape).astype(np.float32)
    labels, n = pert.patch_labels(SHAPE[:-1], 2)
    baseline = np.zeros_like(x)
    classes = np.array([0, 1, 2])
    calls, seen = [], []

    def predict(inputs):
        calls.append(len(inputs))
        return forward(inputs)

    requests = [(pert.patch_relevance(m, labels, n), classes) for m in (maps, 5 * maps, other)]
    results = pert.region_perturbations(predict, x, requests, baseline, patch=2, steps=4,
                                        patches_per_step=2, batch_size=7, intact=forward(x),
                                        progress=lambda k, r, total: seen.append((k, r, total)))
    assert sum(calls) == 2 * 3 * 4  # two distinct rankings, 3 subjects, 4 steps; no intact input
    assert seen[-1][2] == sum(calls) and {r for _, r, _ in seen} == {0, 2}
    for (m, got) in zip((maps, 5 * maps, other), results):
        alone = pert.region_perturbation(forward, x, m, classes, baseline, 2, 4, 2)
        np.testing.assert_allclose(got.logits, alone.logits, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got.aopc, alone.aopc, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(got.fraction_removed, alone.fraction_removed)


@pytest.mark.parametrize("shape", [(12, 11, 9, 1), (10, 10, 1), (5, 5, 5, 1)])
@pytest.mark.parametrize("signed", [False, True])
def test_cached_ssim_is_scikit_images(rng, shape, signed):
    """The original's window statistics filtered once give scikit-image's SSIM, to the bit."""
    from skimage.metrics import structural_similarity

    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    prepared = _Similarity(a, signed)
    first, second = _normalised(a.sum(-1), signed), _normalised(b.sum(-1), signed)
    for other in (second, first, second):  # the cache serves every comparison
        got = prepared.ssim(other)
        win = min(7, *first.shape)
        win = win if win % 2 else win - 1
        assert got == structural_similarity(first, other, data_range=2.0 if signed else 1.0,
                                            win_size=win)

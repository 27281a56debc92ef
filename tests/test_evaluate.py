"""Faithfulness metrics on tiny models with known answers, and the evaluate stage end to end."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from brainage import faithfulness as ff
from tests.builders import REPO, RUN_SHAPE, write_gm



# --------------------------------------------------------------------------------------------------
# Region perturbation


def _linear_model(shape, weights):
    """Flatten → Dense(1, linear, no bias): the logit is Σ w·x, the true contribution map is w·x."""
    import keras

    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                              keras.layers.Dense(1, use_bias=False)])
    model.layers[-1].kernel.assign(weights.reshape(-1, 1).astype(np.float32))
    return model


def test_patch_labels_tile_uneven_shapes():
    labels, n = ff.patch_labels((5, 7, 3), 2)
    assert labels.shape == (5, 7, 3) and n == 3 * 4 * 2
    assert np.array_equal(np.unique(labels), np.arange(n))
    assert labels[0, 0, 0] == labels[1, 1, 1] != labels[2, 0, 0]
    maps = np.ones((2, 5, 7, 3, 1))
    sums = ff.patch_relevance(maps, labels, n)
    assert sums.shape == (2, n) and sums.sum() == 2 * 5 * 7 * 3
    assert sums[0, 0] == 8 and sums[0, -1] == 1  # a full corner patch and the cut-short last one


def test_aopc_ranks_the_true_map_above_random_above_reversed(rng):
    shape = (8, 8, 1)
    w = rng.uniform(0, 1, shape)
    x = rng.uniform(0.5, 1, (3,) + shape).astype(np.float32)
    model = _linear_model(shape, w)
    predict = ff.logit_function(model, batch_size=16)
    true_map = x * w[None]
    baseline = ff.make_baseline(x, "zeros")
    kw = dict(classes=[0, 0, 0], baseline=baseline, patch=2, steps=6, patches_per_step=1)
    best = ff.region_perturbation(predict, x, true_map, **kw)
    rand = ff.region_perturbation(predict, x, ff.random_maps(x.shape, seed=1), **kw)
    worst = ff.region_perturbation(predict, x, -true_map, **kw)
    np.testing.assert_allclose(best.logits[:, 0], true_map.reshape(3, -1).sum(1), rtol=1e-5)
    assert best.drops.shape == (3, 7) and (best.drops[:, 0] == 0).all()
    # Removing the patch of largest Σ w·x first drops the logit by exactly that patch's sum.
    labels, n = ff.patch_labels(shape[:-1], 2)
    top = ff.patch_relevance(true_map, labels, n).max(axis=1)
    np.testing.assert_allclose(best.drops[:, 1], top, rtol=1e-5)
    assert np.all(np.diff(best.drops, axis=1) >= -1e-6)  # MoRF curve never goes back up here
    assert best.aopc.mean() > rand.aopc.mean() > worst.aopc.mean()
    np.testing.assert_allclose(best.fraction_removed, np.arange(7) * 4 / 64)


def test_region_perturbation_checks_its_input():
    x = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="remove 20 patches but the input has only 4"):
        ff.region_perturbation(lambda b: np.zeros((len(b), 1)), x, x, [0], x, patch=2, steps=10,
                               patches_per_step=2)
    with pytest.raises(ValueError, match="do not match inputs"):
        ff.region_perturbation(lambda b: b, x, x[:, :3], [0], x)


def test_baselines(rng):
    x = rng.uniform(0, 1, (2, 6, 7, 5, 1)).astype(np.float32)
    assert not ff.make_baseline(x, "zeros").any()
    mean = x.mean(axis=0)
    np.testing.assert_array_equal(ff.make_baseline(x, "mean", mean[..., 0])[1], mean)
    blurred = ff.make_baseline(x, "blur", blur_sigma=2.0)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    np.testing.assert_allclose(blurred.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), rtol=0.05)
    with pytest.raises(ValueError, match="unknown perturbation baseline 'noise'"):
        ff.make_baseline(x, "noise")
    with pytest.raises(ValueError, match="needs the cohort mean image"):
        ff.make_baseline(x, "mean")


# --------------------------------------------------------------------------------------------------
# Cascading randomisation


@pytest.fixture(scope="module")
def small_cnn():
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((10, 9, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="block1_conv_a")(inputs)
    h = keras.layers.Conv2D(4, 3, name="block1_conv_b")(h)
    h = keras.layers.BatchNormalization(name="block1_bn")(h)
    h = keras.layers.ReLU(name="block1_relu")(h)
    h = keras.layers.AveragePooling2D(2, name="block1_pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(8, activation="relu", name="dense1")(h)
    outputs = keras.layers.Dense(3, name="logits")(h)
    return keras.Model(inputs, outputs)


def test_cascade_groups_go_top_down(small_cnn):
    assert ff.cascade_groups(small_cnn, "block") == [
        ("logits", ["logits"]), ("dense1", ["dense1"]),
        ("block1", ["block1_bn", "block1_conv_b", "block1_conv_a"])]
    assert [g for g, _ in ff.cascade_groups(small_cnn, "layer")] == [
        "logits", "dense1", "block1_bn", "block1_conv_b", "block1_conv_a"]


def test_cascade_randomises_exactly_the_layers_it_names(small_cnn):
    trained = [[np.array(w) for w in layer.get_weights()] for layer in small_cnn.layers]
    seen = []
    for label, done, model in ff.randomisation_cascade(small_cnn, "layer", seed=0):
        seen.append(label)
        for layer, before in zip(model.layers, trained):
            for w, w0, var in zip(layer.get_weights(), before, layer.weights):
                same = np.array_equal(w, w0)
                if layer.name in done and var.trainable and w0.std() > 0:
                    assert not same, f"{label}: {layer.name}/{var.name} was not randomised"
                elif layer.name not in done or not var.trainable:
                    assert same, f"{label}: {layer.name}/{var.name} changed but was not randomised"
    assert seen[-1] == "block1_conv_a"
    for layer, before in zip(small_cnn.layers, trained):  # the trained model is untouched
        for w, w0 in zip(layer.get_weights(), before):
            np.testing.assert_array_equal(w, w0)


def test_a_map_that_ignores_the_weights_is_flagged(small_cnn, rng):
    from brainage.relevance import make_analyzer

    x = rng.uniform(0, 1, (3, 10, 9, 1)).astype(np.float32)
    classes = np.asarray(small_cnn(x)).argmax(axis=1)

    def gradient(model, inputs):
        return make_analyzer(model, "gradient", compile=False).explain(
            inputs, target="true", labels=classes).maps

    tables = []
    for name, fn in (("input", lambda model, inputs: inputs), ("gradient", gradient)):
        t = ff.cascading_randomisation(small_cnn, x, fn, granularity="block", seed=0)
        tables.append(t.assign(method=name))
    table = pd.concat(tables, ignore_index=True)
    assert list(table.columns[:4]) == ["input", "step", "layer", "n_layers"]
    assert {"spearman_abs", "ssim_abs", "spearman_signed", "ssim_signed"} <= set(table.columns)
    assert len(table) == 2 * 3 * 3
    inputs = table[table.method == "input"]
    np.testing.assert_allclose(inputs[["spearman_abs", "ssim_abs"]], 1.0, atol=1e-6)
    flagged = ff.insensitive_methods(table, after="logits", threshold=0.9)
    assert "input" in flagged and "gradient" not in flagged
    with pytest.raises(ValueError, match="cascade step 'block9' not in"):
        ff.insensitive_methods(table, after="block9")


def test_map_similarity(rng):
    a = rng.standard_normal((9, 8, 7, 1))
    same = ff.map_similarity(a, 3 * a)
    assert same["spearman"] == pytest.approx(1) and same["ssim"] == pytest.approx(1)
    flipped = ff.map_similarity(a, -a)  # absolute maps: identical; signed: opposite
    assert flipped["spearman"] == pytest.approx(1)
    assert ff.map_similarity(a, -a, signed=True)["spearman"] == pytest.approx(-1)
    other = ff.map_similarity(a, rng.standard_normal(a.shape))
    assert abs(other["spearman"]) < 0.2 and other["ssim"] < 0.3


# --------------------------------------------------------------------------------------------------
# Localisation


def test_localisation_perfect_uniform_and_inverted_maps():
    shape = (6, 7, 8)
    brain = np.zeros(shape, bool)
    brain[1:5, 1:6, 1:7] = True
    mask = np.zeros(shape, bool)
    mask[1:3, 1:6, 1:7] = True
    share = mask[brain].mean()
    perfect = mask * 2.0
    perfect[~brain] = 7.0  # relevance outside the brain must not count
    maps = np.stack([perfect, np.ones(shape), (brain & ~mask) * 1.0, mask * -1.0])
    out = ff.localisation_scores(maps[..., None], mask, brain, max_voxels=None)
    assert out["mask_share"].iloc[0] == pytest.approx(share)
    assert out["mass_ratio"].iloc[0] == pytest.approx(1 / share)
    assert out["auc"].iloc[0] == pytest.approx(1.0)
    assert out["brain_share"].iloc[0] == pytest.approx(perfect[brain].sum() / perfect.sum())
    assert out["mass_ratio"].iloc[1] == pytest.approx(1.0) and out["auc"].iloc[1] == pytest.approx(0.5)
    assert out["mass_ratio"].iloc[2] == pytest.approx(0.0) and out["auc"].iloc[2] == pytest.approx(0.0)
    assert np.isnan(out["mass_ratio"].iloc[3])  # no positive relevance to share
    absolute = ff.localisation_scores(maps[3:], mask, brain, relevance="absolute")
    assert absolute["mass_ratio"].iloc[0] == pytest.approx(1 / share)
    sub = ff.localisation_scores(maps[:1], mask, brain, max_voxels=50)
    assert sub["auc"].iloc[0] == pytest.approx(1.0)


def test_mean_se():
    assert ff.mean_se([1.0, 3.0, np.nan]) == (2.0, pytest.approx(1.0), 2)
    mean, se, n = ff.mean_se([4.0])
    assert mean == 4.0 and np.isnan(se) and n == 1


# --------------------------------------------------------------------------------------------------
# The stage end to end


@pytest.fixture(scope="module")
def ground_truth(train_run):
    """The tiny cohort's own ground truth: its "ageing region" is the cube [3:8]³ of the source grid."""
    folder = Path(train_run["prep"].table["path"][0]).parents[1] / "ground_truth"
    effect = np.zeros(RUN_SHAPE, np.float32)
    effect[3:8, 3:8, 3:8] = -0.4
    write_gm(folder / "age_effect.nii.gz", effect)
    labels = np.zeros(RUN_SHAPE, np.int16)
    labels[3:8, 3:8, 3:8] = 1
    labels[8:10, 1:4, 1:4] = 2
    write_gm(folder / "regions.nii.gz", labels)
    pd.DataFrame({"name": ["Core", "Visual"], "index": [1, 2], "role": ["ageing", "control"],
                  "factor": [1.0, 0.0]}).to_csv(folder / "regions.csv", index=False)
    return folder


def compose_evaluate(train_run, *overrides, methods="dtd,gradient_x_input,gradcam"):
    gradcam = ["explainer.gradcam.layer=block1_conv_b"] if "gradcam" in methods else []
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("evaluate", overrides=[
            f"train_dir={train_run['run']}", "progress=false", f"explainer=[{methods}]", *gradcam,
            "subjects=all", "subjects_limit=6", "batch_size=4", "perturbation.patch=2",
            "perturbation.steps=4", "perturbation.patches_per_step=3", "randomisation.subjects=2",
            "localisation.brain_threshold=0.05", "localisation.threshold=0.1", *overrides])


@pytest.fixture(scope="module")
def evaluated(train_run, ground_truth, tmp_path_factory):
    from brainage.evaluate import evaluate

    out = tmp_path_factory.mktemp("evaluate_run")
    summary = evaluate(compose_evaluate(train_run), out)
    return out, summary


def test_stage_writes_every_output(evaluated):
    out, summary = evaluated
    for name in ("perturbation.csv", "aopc.csv", "aopc_subjects.csv", "randomisation.csv",
                 "randomisation_subjects.csv", "localisation.csv", "localisation_subjects.csv",
                 "subjects.csv", "verdict.md", "evaluate.json", "figures/perturbation.png",
                 "figures/randomisation.png", "figures/localisation.png", "gradcam_layers.csv",
                 "figures/methods.png"):
        assert (out / name).is_file(), name
    assert not (out / ".incomplete").exists()
    assert summary["methods"] == ["dtd", "gradient_x_input", "gradcam", "random"]
    assert json.loads((out / "evaluate.json").read_text())["n_subjects"] == 6


def test_stage_tables_are_consistent(evaluated):
    out, summary = evaluated
    subjects = pd.read_csv(out / "subjects.csv")
    assert len(subjects) == 6 and sorted(subjects["bin"].value_counts()) == [2, 2, 2]
    curves = pd.read_csv(out / "perturbation.csv")
    assert list(curves.columns) == ["method", "step", "fraction_removed", "mean_drop", "se_drop",
                                    "mean_logit", "n"]
    assert len(curves) == 4 * 5 and (curves[curves.step == 0]["mean_drop"] == 0).all()
    aopc = pd.read_csv(out / "aopc.csv")
    assert list(aopc["rank"]) == [1, 2, 3, 4] and aopc["aopc"].is_monotonic_decreasing
    per_subject = pd.read_csv(out / "aopc_subjects.csv")
    for method, g in per_subject.groupby("method"):
        assert aopc.set_index("method").loc[method, "aopc"] == pytest.approx(g["aopc"].mean())
    rand = pd.read_csv(out / "randomisation.csv")
    assert set(rand["method"]) == {"dtd", "gradient_x_input", "gradcam"}  # no random map
    assert list(rand[rand.method == "dtd"]["layer"]) == ["logits", "dense1", "block1"]
    assert (rand["n"] == 2).all()
    loc = pd.read_csv(out / "localisation.csv", dtype={"bin": str})
    assert set(loc["bin"]) == {"all", "0", "1", "2"} and set(loc["method"]) == set(summary["methods"])
    assert {"mass_ratio", "mass_ratio_se", "auc", "auc_se", "control_ratio", "mask_share"} <= set(loc)
    random_row = loc[(loc.method == "random") & (loc.bin == "all")].iloc[0]
    assert 0.3 < random_row["auc"] < 0.7  # the floor is near chance


def test_verdict_names_ranking_checks_and_localisation(evaluated):
    out, summary = evaluated
    text = (out / "verdict.md").read_text()
    for heading in ("Region perturbation", "cascading randomisation", "Localisation", "Summary"):
        assert heading in text
    for method in summary["methods"]:
        assert method in text
    assert "Most faithful by AOPC" in text and "Failed the randomisation check" in text
    assert "Grad-CAM across layers" in text and "block1_conv_b" in text


def test_gradcam_layer_profile_covers_every_block(evaluated):
    out, _ = evaluated
    layers = pd.read_csv(out / "gradcam_layers.csv")
    assert list(layers["layer"]) == ["block1_conv_b"]  # the tiny model has one block
    assert {"roughness", "focus", "between_subject_spearman"} <= set(layers.columns)
    assert (layers["n_subjects"] == 6).all()


def test_map_profile_tells_local_from_general(rng):
    from scipy.ndimage import gaussian_filter

    from brainage.faithfulness import map_profile

    shape = (4, 16, 17, 15, 1)
    noise = rng.uniform(size=shape)
    smooth = np.stack([gaussian_filter(v[..., 0], 3)[..., None] for v in noise])
    rough, soft = map_profile(noise), map_profile(smooth)
    assert rough["roughness"] > 3 * soft["roughness"]
    same = np.repeat(smooth[:1], 4, axis=0)
    assert map_profile(same)["between_subject_spearman"] == pytest.approx(1.0)
    assert abs(rough["between_subject_spearman"]) < 0.1
    peaked = np.zeros(shape)
    peaked[:, 8, 8, 7] = 1.0
    assert map_profile(peaked)["focus"] < 0.001 < map_profile(np.ones(shape))["focus"]


def test_real_data_without_ground_truth_skips_localisation(train_run, ground_truth,
                                                           tmp_path):
    from brainage.evaluate import evaluate

    cfg = compose_evaluate(train_run, "randomisation.enabled=false", "perturbation.enabled=false",
                           methods="gradient_x_input")
    hidden = ground_truth.with_name("hidden_ground_truth")
    ground_truth.rename(hidden)
    try:
        summary = evaluate(cfg, tmp_path / "out")
    finally:
        hidden.rename(ground_truth)
    assert not (tmp_path / "out" / "localisation.csv").exists()
    assert "no ground truth" in summary["localisation"]["ground_truth_note"]
    assert "Skipped: no ground truth" in (tmp_path / "out" / "verdict.md").read_text()


@pytest.mark.parametrize("override, message", [
    ("train_dir=/nonexistent/run", "train_dir=/nonexistent/run does not exist"),
    ("perturbation.baseline=noise", "perturbation.baseline='noise'; expected one of"),
    ("perturbation.steps=100", r"100 steps × 3 patches = 300 patches, but the \(9, 10, 11\) crop"),
    ("randomisation.flag_after=block7", "randomisation.flag_after='block7' is not a cascade step"),
    ("localisation.mask=regions", "localisation.mask=regions needs localisation.regions"),
    ("explainer.gradcam.layer=nope", "explainer gradcam: gradcam: model has no layer 'nope'"),
    ("target=all", "target='all'; expected predicted or true"),
])
def test_bad_requests_give_clear_errors(train_run, tmp_path, override, message):
    from brainage.errors import BrainageError, EvaluateError
    from brainage.evaluate import evaluate

    with pytest.raises(BrainageError, match=message) as info:
        evaluate(compose_evaluate(train_run, override), tmp_path)
    assert not (tmp_path / "verdict.md").exists() and not (tmp_path / ".incomplete").exists()
    if not override.startswith("train_dir"):
        assert isinstance(info.value, EvaluateError)


def test_refuses_to_overwrite_an_earlier_run(train_run, tmp_path):
    from brainage.errors import RunDirError
    from brainage.evaluate import evaluate

    (tmp_path / "verdict.md").write_text("earlier")
    with pytest.raises(RunDirError):
        evaluate(compose_evaluate(train_run), tmp_path)
    assert (tmp_path / "verdict.md").read_text() == "earlier"


@pytest.mark.slow
def test_cli_reports_errors_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "brainage.evaluate", "train_dir=/nonexistent",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 2
    assert "error: train_dir=/nonexistent does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_subject_limit_takes_each_age_bin_in_turn():
    from brainage.evaluate import spread_over_bins

    rows = np.array([10, 11, 12, 13, 14, 15, 16])
    bins = np.array([0, 0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(spread_over_bins(rows, bins, 4), [10, 11, 14, 15])
    np.testing.assert_array_equal(spread_over_bins(rows, bins, 6), [10, 11, 12, 14, 15, 16])
    np.testing.assert_array_equal(spread_over_bins(rows, bins, None), rows)

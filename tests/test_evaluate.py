"""The evaluate stage end to end on the tiny trained run; the metrics are tested in tests/faithfulness/."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from tests.builders import REPO, RUN_CROP, RUN_SHAPE, run_with_bin_edges, write_gm


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory):
    """A ground truth for the tiny cohort, in a folder of its own (the session's cohort stays
    untouched): its "ageing region" is the cube [3:8]³ of the source grid."""
    folder = tmp_path_factory.mktemp("ground_truth")
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


@pytest.fixture(scope="module")
def second_run(train_run, tmp_path_factory):
    """A second tiny training run: the session run's cohort, a model trained from another seed."""
    import shutil

    import keras

    from brainage.model import build_model

    run = tmp_path_factory.mktemp("second") / "2026-01-02_00-00-00"
    shutil.copytree(train_run["run"], run)
    keras.utils.set_random_seed(7)
    model = build_model(input_shape=tuple(RUN_CROP) + (1,), widths=(3,), dense_units=6,
                        n_classes=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    prep = train_run["prep"]
    model.fit(np.asarray(prep.volumes, np.float32)[..., None], prep.labels(), epochs=15,
              batch_size=8, verbose=0)
    model.save(run / "model.keras")
    return run


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
    summary = evaluate(compose_evaluate(train_run, f"localisation.ground_truth={ground_truth}"), out)
    return out, summary


@pytest.mark.slow
def test_stage_writes_every_output(evaluated):
    out, summary = evaluated
    for name in ("perturbation.csv", "aopc.csv", "aopc_subjects.csv", "randomisation.csv",
                 "randomisation_subjects.csv", "localisation.csv", "localisation_subjects.csv",
                 "subjects.csv", "verdict.md", "evaluate.json", "figures/perturbation.png",
                 "figures/randomisation.png", "figures/localisation.png", "gradcam_layers.csv",
                 "figures/methods.png", "scorecard.csv", "report.html", "figures/scorecard.png",
                 "class_maps.csv", "class_maps_subjects.csv", "conservation.csv",
                 "conservation_subjects.csv"):
        assert (out / name).is_file(), name
    assert not (out / ".incomplete").exists()
    assert summary["methods"] == ["dtd", "gradient_x_input", "gradcam", "random"]
    assert json.loads((out / "evaluate.json").read_text())["n_subjects"] == 6


@pytest.mark.slow
def test_stage_tables_are_consistent(evaluated):
    out, summary = evaluated
    subjects = pd.read_csv(out / "subjects.csv")
    assert len(subjects) == 6 and sorted(subjects["bin"].value_counts()) == [2, 2, 2]
    curves = pd.read_csv(out / "perturbation.csv")
    assert list(curves.columns) == ["method", "target", "step", "fraction_removed", "mean_drop",
                                    "se_drop", "mean_logit", "n"]
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


SCORECARD_COLUMNS = ["method", "target", "aopc", "aopc_se", "rand_spearman_dense1",
                     "rand_spearman_all", "class_map_correlation", "loc_auc", "loc_mass_ratio",
                     "control_ratio", "conservation_error", "pass_randomisation",
                     "pass_class_maps", "pass_aopc", "pass_localisation", "pass_conservation",
                     "goals_met", "verdict"]


@pytest.mark.slow
def test_scorecard_has_a_checked_row_per_pair(evaluated):
    out, summary = evaluated
    card = pd.read_csv(out / "scorecard.csv")
    assert set(SCORECARD_COLUMNS) <= set(card.columns)
    assert list(zip(card["method"], card["target"])) == [
        (m, "predicted") for m in ("dtd", "gradient_x_input", "gradcam", "random")]
    row = card.set_index("method")
    aopc = pd.read_csv(out / "aopc.csv").set_index("method")
    assert row.loc["dtd", "aopc"] == pytest.approx(aopc.loc["dtd", "aopc"])
    rand = pd.read_csv(out / "randomisation.csv")
    at = rand[(rand.method == "gradcam") & (rand.layer == "dense1")]["spearman_abs"].iloc[0]
    assert row.loc["gradcam", "rand_spearman_dense1"] == pytest.approx(at)
    # DTD conserves (≤ 1e-5); gradient methods have no identity: NaN, and the check is not met.
    assert row.loc["dtd", "conservation_error"] < 1e-5 and row.loc["dtd", "pass_conservation"]
    assert np.isnan(row.loc["gradcam", "conservation_error"])
    assert not row.loc["gradcam", "pass_conservation"]
    assert row.loc["random", "verdict"] == "floor"
    assert 0 <= row.loc["gradient_x_input", "class_map_correlation"] <= 1
    choice = summary["default_choice"]
    assert choice["method"] == "dtd" and choice["target"] == "predicted"


@pytest.mark.slow
def test_report_html_is_offline_and_shows_the_scorecard(evaluated):
    out, summary = evaluated
    page = (out / "report.html").read_text()
    assert "Scorecard" in page and "gradient_x_input" in page and "Default DTD variant" in page
    assert page.count("data:image/png;base64,") == 5  # every figure embedded
    assert "src='http" not in page and 'src="http' not in page
    text = (out / "verdict.md").read_text()
    assert "## Scorecard: five checks (thresholds in `configs/evaluate.yaml`" in text
    assert "Default DTD variant" in text


@pytest.mark.slow
def test_verdict_names_ranking_checks_and_localisation(evaluated):
    out, summary = evaluated
    text = (out / "verdict.md").read_text()
    for heading in ("Region perturbation", "cascading randomisation", "Localisation", "Summary"):
        assert heading in text
    for method in summary["methods"]:
        assert method in text
    assert "Most faithful by AOPC" in text and "Failed the randomisation check" in text
    assert "Grad-CAM across layers" in text and "block1_conv_b" in text


@pytest.mark.slow
def test_gradcam_layer_profile_covers_every_block(evaluated):
    out, _ = evaluated
    layers = pd.read_csv(out / "gradcam_layers.csv")
    assert list(layers["layer"]) == ["block1_conv_b"]  # the tiny model has one block
    assert {"roughness", "focus", "between_subject_spearman"} <= set(layers.columns)
    assert (layers["n_subjects"] == 6).all()


@pytest.mark.slow
def test_target_modes_and_pairs_are_scored_side_by_side(train_run, tmp_path):
    from brainage.evaluate import evaluate

    cfg = compose_evaluate(train_run, "target=[predicted,2]", "pairs=[dtd:true]",
                           "gradcam_layers.enabled=false", "subjects_limit=3",
                           "randomisation.subjects=1", "class_maps.subjects=1",
                           methods="dtd,gradient_x_input")
    evaluate(cfg, tmp_path)
    card = pd.read_csv(tmp_path / "scorecard.csv", dtype={"target": str})
    assert list(zip(card["method"], card["target"])) == [
        ("dtd", "predicted"), ("gradient_x_input", "predicted"), ("dtd", "2"),
        ("gradient_x_input", "2"), ("dtd", "true"), ("random", "predicted"), ("random", "2")]
    per_subject = pd.read_csv(tmp_path / "aopc_subjects.csv", dtype={"target": str})
    assert (per_subject[per_subject.target == "2"]["class"] == 2).all()
    truth = per_subject[per_subject.target == "true"]
    assert (truth["class"] == truth["bin"]).all()
    rand = pd.read_csv(tmp_path / "randomisation.csv", dtype={"target": str})
    assert set(zip(rand["method"], rand["target"])) == set(
        zip(card["method"], card["target"])) - {("random", "predicted"), ("random", "2")}
    assert "dtd [2]" in (tmp_path / "verdict.md").read_text()


@pytest.mark.slow
def test_several_training_runs_are_summarised(train_run, second_run, tmp_path):
    from brainage.evaluate import evaluate

    cfg = compose_evaluate(train_run, "train_dir=null",
                           f"train_dirs=[{train_run['run']},{second_run}]",
                           "gradcam_layers.enabled=false", "randomisation.enabled=false",
                           "subjects_limit=3", "class_maps.subjects=1",
                           methods="dtd,gradient_x_input")
    summary = evaluate(cfg, tmp_path)
    assert summary["n_models"] == 2 and len(summary["models"]) == 2
    models = sorted(p.name for p in (tmp_path / "models").iterdir() if p.name != "ensemble")
    assert models == [f"0_{Path(train_run['run']).name}", f"1_{second_run.name}"]
    for name in models:
        assert (tmp_path / "models" / name / "scorecard.csv").is_file()
        assert (tmp_path / "models" / name / "report.html").is_file()
    per_model = [pd.read_csv(tmp_path / "models" / m / "scorecard.csv") for m in models]
    table = pd.read_csv(tmp_path / "scorecard_summary.csv")
    assert list(table["method"]) == ["dtd", "gradient_x_input", "random"]
    dtd = table.iloc[0]
    aopcs = [card.iloc[0]["aopc"] for card in per_model]
    assert dtd["n_models"] == 2 and dtd["aopc"] == pytest.approx(np.mean(aopcs))
    assert dtd["aopc_sd"] == pytest.approx(np.std(aopcs, ddof=1))
    assert {"verdict", "goals_met", "pass_conservation_models"} <= set(table.columns)
    assert len(pd.read_csv(tmp_path / "scorecard.csv")) == 6  # every model's rows
    text = (tmp_path / "verdict.md").read_text()
    assert "over several models" in text and "mean ± SD" in text and "2/2" in text
    assert "models/0_" in (tmp_path / "report.html").read_text()


@pytest.mark.slow
def test_the_runs_ensemble_is_scored_as_one_more_model(train_run, second_run, tmp_path):
    """train_dirs also scores the runs' ensemble into models/ensemble/: one model's files, a row
    per pair on the members' subjects, its predicted class the arg-max of the mean
    probabilities, the mean DTD map conserving; Grad-CAM layers skipped with the reason."""
    import keras

    from brainage.evaluate import evaluate

    runs = [train_run["run"], second_run]
    cfg = compose_evaluate(train_run, "train_dir=null", f"train_dirs=[{runs[0]},{runs[1]}]",
                           "subjects_limit=3", "class_maps.subjects=1", "randomisation.subjects=1",
                           methods="dtd,gradient_x_input")
    summary = evaluate(cfg, tmp_path)
    entry = summary["ensemble"]
    assert entry["scored"] and entry["folder"] == "models/ensemble" and entry["n_members"] == 2
    assert entry["same_subjects"] and "gradcam_layers" in entry["skipped_checks"]
    assert entry["model_skill"]["value"] is None and "test_predictions.csv" in \
        entry["model_skill"]["note"]  # the tiny runs wrote no test predictions
    folder = tmp_path / "models" / "ensemble"
    for name in ("scorecard.csv", "verdict.md", "report.html", "evaluate.json", "aopc.csv",
                 "randomisation.csv", "class_maps.csv", "conservation.csv", "subjects.csv"):
        assert (folder / name).is_file(), name
    assert not (folder / "gradcam_layers.csv").exists()
    card = pd.read_csv(folder / "scorecard.csv", dtype={"target": str})
    assert list(zip(card["method"], card["target"])) == [
        ("dtd", "predicted"), ("gradient_x_input", "predicted"), ("random", "predicted")]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "scorecard_ensemble.csv",
                                              dtype={"target": str}), card)
    assert card.set_index("method").loc["dtd", "conservation_error"] < 1e-5
    own = json.loads((folder / "evaluate.json").read_text())
    member = json.loads((tmp_path / "models" / f"0_{runs[0].name}" / "evaluate.json").read_text())
    assert own["subjects"] == member["subjects"] and own["train_dirs"] == [str(r) for r in runs]
    subjects = pd.read_csv(folder / "subjects.csv", dtype={"subject_id": str})
    prep = train_run["prep"]
    x = np.asarray(prep.volumes[[list(prep.table["subject_id"]).index(s)
                                 for s in subjects["subject_id"]]], np.float32)[..., None]
    logits = np.stack([np.asarray(keras.saving.load_model(r / "model.keras", compile=False)(x))
                       for r in runs]).astype(np.float64)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    np.testing.assert_array_equal(subjects["predicted"], probabilities.mean(axis=0).argmax(axis=1))
    own_verdict = (folder / "verdict.md").read_text()
    assert "The ensemble of 2 training runs" in own_verdict and "Not scored: gradcam layers" in own_verdict
    text = (tmp_path / "verdict.md").read_text()
    assert "## The ensemble as one model" in text and "(members " in text
    assert "The ensemble as one model" in (tmp_path / "report.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["other age bins", "switched off"])
def test_an_ensemble_that_is_not_scored_says_why(train_run, tmp_path, case):
    """Runs of other age bins are scored alone and the summary says in one line why no ensemble
    was; ensemble_scored=false skips it."""
    import shutil

    from brainage.evaluate import evaluate

    other = tmp_path / "runs" / "2026-01-04_00-00-00"
    if case == "other age bins":
        run_with_bin_edges(train_run["run"], other, [10, 41, 70, 101])  # same split
    else:
        shutil.copytree(train_run["run"], other)
    switch = ["ensemble_scored=false"] if case == "switched off" else []
    cfg = compose_evaluate(train_run, "train_dir=null", f"train_dirs=[{train_run['run']},{other}]",
                           "perturbation.enabled=false", "randomisation.enabled=false",
                           "class_maps.enabled=false", "gradcam_layers.enabled=false",
                           "subjects_limit=3", *switch, methods="gradient_x_input")
    summary = evaluate(cfg, tmp_path / "out")
    out = tmp_path / "out"
    assert summary["n_models"] == 2 and (out / "scorecard_summary.csv").is_file()
    assert not (out / "models" / "ensemble").exists() and not (out / "scorecard_ensemble.csv").exists()
    entry = summary["ensemble"]
    assert not entry["scored"]
    expected = "age bins" if case == "other age bins" else "ensemble_scored=false"
    assert expected in entry["reason"]
    line = f"Not scored: {entry['reason']}."
    assert line in (out / "verdict.md").read_text()
    assert json.loads((out / "evaluate.json").read_text())["ensemble"] == entry


@pytest.mark.slow
def test_real_data_without_ground_truth_skips_localisation(train_run, tmp_path):
    from brainage.evaluate import evaluate

    cohort = Path(train_run["prep"].table["path"][0]).parents[1]
    assert not (cohort / "ground_truth").exists()  # the default, <data.root>/ground_truth
    cfg = compose_evaluate(train_run, "randomisation.enabled=false", "perturbation.enabled=false",
                           methods="gradient_x_input")
    summary = evaluate(cfg, tmp_path / "out")
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
    ("target=[predicted,7]", "target '7': class 7 out of range for a model with 3 outputs"),
    ("pairs=[dtd]", "pairs: 'dtd' is not method:target"),
    ("pairs=[lrp_composite:true]", "names 'lrp_composite', which is not among the selected"),
    ("target=predicted-vs-nothing", "dtd:predicted-vs-nothing: the relevance engine refuses"),
    ("scorecard.randomisation_step=block9", "scorecard.randomisation_step='block9' is not a cascade"),
    ("train_dirs=[/a,/b]", r"give train_dirs=\[…\] or train_dir/model_path, not both"),
    ("localisation.ground_truth=/nonexistent/gt", "ground_truth=/nonexistent/gt holds no age_effect"),
    ("+explainer.random.name=gradient", "explainer name 'random' is reserved for the random-map floor"),
])
def test_bad_requests_give_clear_errors(train_run, tmp_path, override, message):
    from brainage.errors import BrainageError, EvaluateError, TrainedRunError
    from brainage.evaluate import evaluate

    with pytest.raises(BrainageError, match=message) as info:
        evaluate(compose_evaluate(train_run, override), tmp_path)
    assert not (tmp_path / "verdict.md").exists() and not (tmp_path / ".incomplete").exists()
    # the training run's problems are the run owner's error, whichever stage uses it
    run_problem = override.startswith(("train_dir=", "explainer."))
    assert isinstance(info.value, TrainedRunError if run_problem else EvaluateError)


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


@pytest.mark.slow
def test_every_explainer_config_is_scored_with_the_named_references(train_run, tmp_path):
    """Every method in configs/explainer/ goes through the whole scorecard (reference methods
    rooted at the training split's youngest mean), each with a verdict."""
    from brainage.evaluate import evaluate

    names = sorted(p.stem for p in (REPO / "configs" / "explainer").glob("*.yaml"))
    cfg = compose_evaluate(train_run, "localisation.enabled=false", "explainer.smoothgrad.samples=2",
                           "explainer.smoothgrad_x_input.samples=2",
                           "explainer.integrated_gradients.steps=2", methods=",".join(names))
    evaluate(cfg, tmp_path)
    card = pd.read_csv(tmp_path / "scorecard.csv", dtype={"target": str})
    assert set(names) <= set(card["method"])
    assert card["verdict"].notna().all()
    conserving = card[card["method"].isin(["dtd", "dtd_seed", "dtd_reference", "deeplift",
                                            "dtd_vs_mean", "dtd_logodds"])]
    assert (conserving["conservation_error"] < 1e-4).all(), conserving[["method", "target", "conservation_error"]]


@pytest.mark.parametrize("threshold, void", [(1.01, True), (0.0, False)])
def test_a_model_that_did_not_learn_the_plant_voids_its_localisation(train_run, ground_truth,
                                                                       tmp_path, threshold, void):
    """The model's test skill comes first; below localisation.min_model_accuracy a planted
    localisation is written but void, and verdict.md, report.html and the scorecard say so."""
    import shutil

    from brainage.evaluate import evaluate

    run = tmp_path / "run" / "2026-01-03_00-00-00"
    shutil.copytree(train_run["run"], run)
    (run / "metrics.json").write_text(json.dumps({"test_accuracy": 0.75, "test_n": 12,
                                                  "test_balanced_accuracy": 0.75}))
    planted = tmp_path / "planted_truth"
    shutil.copytree(ground_truth, planted)
    plant = np.zeros(RUN_SHAPE, np.float32)
    plant[3:6, 3:6, 3:6] = 1
    write_gm(planted / "planted.nii.gz", plant)
    cfg = compose_evaluate({"run": run}, f"localisation.ground_truth={planted}",
                           "localisation.mask=planted", f"localisation.min_model_accuracy={threshold}",
                           "randomisation.enabled=false", "perturbation.enabled=false",
                           methods="gradient_x_input")
    summary = evaluate(cfg, tmp_path / "out")
    skill = summary["model_skill"]
    assert skill["measure"] == "test balanced accuracy" and skill["value"] == 0.75
    card = pd.read_csv(tmp_path / "out" / "scorecard.csv")
    row = card[card["method"] == "gradient_x_input"].iloc[0]
    verdict = (tmp_path / "out" / "verdict.md").read_text()
    report = (tmp_path / "out" / "report.html").read_text()
    assert np.isfinite(row["loc_auc"])  # scored either way
    assert verdict.startswith("# Faithfulness verdict") and "Model: test balanced accuracy" in verdict
    assert ("void: localisation" in row["verdict"]) == void
    assert ("**Localisation is void:**" in verdict) == void == ("Localisation is void" in report)
    assert (skill["void"] is not None) == void

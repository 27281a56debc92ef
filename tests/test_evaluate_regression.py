"""The evaluate stage on an age regressor (issue #13): the scorecard of the age output — AOPC in
years, relevance summing to the predicted age, localisation, randomisation, class maps n/a —
class-contrasting explainers skipped with a note, class targets refused."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from brainage.errors import EvaluateError
from brainage.evaluate import evaluate
from tests.builders import REPO, RUN_SHAPE, build_regression_run, write_gm

pytestmark = pytest.mark.slow  # a regressor is fitted once per module (~20 s on one core)


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regression_evaluate")
    built = build_regression_run(tmp)
    effect = np.zeros(RUN_SHAPE, np.float32)
    effect[3:8, 3:8, 3:8] = -0.4  # the cohort's "ageing region"
    write_gm(tmp / "ground_truth" / "age_effect.nii.gz", effect)
    return {**built, "ground_truth": tmp / "ground_truth"}


def _compose(run, *overrides, methods="dtd,dtd_vs_mean,clrp,deeplift,gradient_x_input"):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("evaluate", overrides=[
            f"train_dir={run['run']}", "progress=false", f"explainer=[{methods}]",
            "subjects=all", "subjects_limit=6", "batch_size=4", "perturbation.patch=2",
            "perturbation.steps=4", "perturbation.patches_per_step=3", "randomisation.subjects=2",
            "localisation.brain_threshold=0.05", "localisation.threshold=0.1",
            f"localisation.ground_truth={run['ground_truth']}", "gradcam_layers.enabled=false",
            *overrides])


@pytest.fixture(scope="module")
def evaluated(regression_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate_regression")
    return out, evaluate(_compose(regression_run), out)


def test_the_age_output_is_scored_and_class_explainers_are_skipped(evaluated):
    out, summary = evaluated
    assert summary["task"] == "regression" and summary["explained_output"] == "age (years)"
    assert set(summary["skipped_methods"]) == {"dtd_vs_mean", "clrp"}
    assert summary["methods"] == ["dtd", "deeplift", "gradient_x_input", "random"]
    assert "class_maps" in summary["not_applicable"]
    card = pd.read_csv(out / "scorecard.csv", keep_default_na=False, na_values=[""])
    assert card["method"].tolist() == ["dtd", "deeplift", "gradient_x_input", "random"]
    assert (card["pass_class_maps"] == "n/a").all()
    assert card["class_map_correlation"].isna().all() and not (out / "class_maps.csv").exists()
    scored = card[card["method"] != "random"]
    assert scored["aopc"].notna().all() and scored["loc_auc"].notna().all()
    assert scored["rand_spearman_dense1"].notna().all()
    assert (card["goals_measured"][card["method"] != "random"] <= 4).all()
    for _, row in scored.iterrows():
        assert "class_maps" not in row["verdict"]


def test_conservation_is_the_predicted_age(evaluated, regression_run):
    out, _ = evaluated
    subjects = pd.read_csv(out / "subjects.csv", dtype={"subject_id": str})
    assert list(subjects.columns) == ["subject_id", "age", "bin", "predicted_age"]
    import keras

    model = keras.saving.load_model(regression_run["run"] / "model.keras", compile=False)
    prep = regression_run["prep"]
    rows = [list(prep.table["subject_id"]).index(s) for s in subjects["subject_id"]]
    x = np.asarray(prep.volumes[rows], np.float32)[..., None]
    np.testing.assert_allclose(subjects["predicted_age"], np.asarray(model(x))[:, 0], rtol=1e-5)
    card = pd.read_csv(out / "scorecard.csv").set_index("method")
    # DTD's relevance sums to the predicted age; DeepLIFT's to it minus the reference's.
    assert card.loc["dtd", "conservation_error"] < 1e-5
    assert card.loc["deeplift", "conservation_error"] < 1e-5
    assert np.isnan(card.loc["gradient_x_input", "conservation_error"])  # no identity


def test_perturbation_tracks_the_predicted_age_in_years(evaluated):
    out, _ = evaluated
    subjects = pd.read_csv(out / "subjects.csv", dtype={"subject_id": str})
    curves = pd.read_csv(out / "perturbation.csv")
    start = curves[(curves["step"] == 0) & (curves["method"] == "dtd")]
    assert start["mean_logit"].iloc[0] == pytest.approx(subjects["predicted_age"].mean(), rel=1e-5)
    per_subject = pd.read_csv(out / "aopc_subjects.csv", dtype={"subject_id": str})
    assert set(per_subject["class"]) == {0}


def test_verdict_and_report_say_what_does_not_apply(evaluated):
    out, _ = evaluated
    text = (out / "verdict.md").read_text()
    assert "## 4. Class maps: not applicable" in text
    assert "Skipped (they need classes): dtd_vs_mean" in text
    assert "AOPC is in years" in text and "of 4 goals met" in text
    html = (out / "report.html").read_text()
    assert "n/a" in html and "Skipped (they need classes)" in html


@pytest.mark.parametrize("override, message", [
    ("target='true'", "target 'true': the class anchor 'true' needs classes, but the training "
                      "run .* is a regression"),
    ("target=predicted-vs-mean", "the contrast '-vs-mean' needs classes"),
    ("pairs=[clrp:predicted]", "pairs: 'clrp:predicted': clrp is skipped on the regression run"),
    ("pairs=[dtd:1]", "pairs: 'dtd:1': the class anchor 1 needs classes"),
])
def test_class_targets_on_a_regression_run_are_clear_errors(regression_run, tmp_path, override,
                                                             message):
    with pytest.raises(EvaluateError, match=message):
        evaluate(_compose(regression_run, override), tmp_path)
    assert not (tmp_path / "verdict.md").exists()


def test_only_class_explainers_is_a_clear_error(regression_run, tmp_path):
    with pytest.raises(EvaluateError, match="every selected explainer needs classes"):
        evaluate(_compose(regression_run, methods="clrp,sglrp"), tmp_path)


def test_several_regression_runs_are_summarised(regression_run, tmp_path):
    second = tmp_path / "second" / "2026-01-02_00-00-00"
    shutil.copytree(regression_run["run"], second)
    cfg = _compose(regression_run, "train_dir=null",
                   f"train_dirs=[{regression_run['run']},{second}]", "randomisation.enabled=false",
                   "subjects_limit=3", methods="dtd,clrp")
    summary = evaluate(cfg, tmp_path / "out")
    assert summary["task"] == "regression" and summary["methods"] == ["dtd", "random"]
    assert summary["skipped_methods"] == {
        "clrp": "clrp contrasts the explained class with the other classes"}
    card = pd.read_csv(tmp_path / "out" / "scorecard_summary.csv", keep_default_na=False,
                       na_values=[""])
    assert (card["pass_class_maps"] == "n/a").all() and card["n_models"].tolist() == [2, 2]
    assert "of 4 goals met" in (tmp_path / "out" / "verdict.md").read_text()
    assert json.loads((tmp_path / "out" / "evaluate.json").read_text())["n_models"] == 2


def test_explain_then_infer_writes_the_predictions_of_a_regression_run(regression_run, tmp_path):
    """The chain a user runs: explain the regression run, then infer on that explain run — the
    predicted ages are the model's, the gap corrected by the training run's stored correction."""
    from omegaconf import OmegaConf

    from brainage.data.age_gap import gap_table
    from brainage.explain import explain
    from brainage.infer import infer
    from tests.builders import compose_stage

    explained = tmp_path / "explain"
    cfg = compose_stage("explain", f"train_dir={regression_run['run']}", "explainer=dtd",
                        "subjects=all", "atlas=custom", f"atlas.path={regression_run['atlas']}",
                        f"atlas.labels={regression_run['labels']}", "progress=false",
                        "figures.subjects=1")
    explain(cfg, explained)
    (explained / ".hydra").mkdir()
    OmegaConf.save(cfg, explained / ".hydra" / "config.yaml")  # what Hydra writes beside a run
    summary = infer(compose_stage("infer", f"explain_dir={explained}", "voxelwise.enabled=false",
                                  "covariates=[]", "regions.n_perm=1000"), tmp_path / "infer")
    table = pd.read_csv(tmp_path / "infer" / "predictions.csv", dtype={"subject_id": str})
    subjects = pd.read_csv(explained / "subjects.csv", dtype={"subject_id": str})
    expected = gap_table(subjects["subject_id"], subjects["age"], subjects["predicted_age"],
                         regression_run["correction"])
    pd.testing.assert_frame_equal(table, expected, check_exact=False, rtol=1e-6)
    np.testing.assert_allclose(table["gap_corrected"], subjects["gap_corrected"], rtol=1e-5,
                               atol=1e-4)  # explain's gap groups used the same correction
    assert summary["design"]["name"] == "highgap_vs_lowgap"
    assert summary["gap_correction"]["correction"] == pytest.approx(
        regression_run["correction"].as_dict())

"""The infer stage on the explain run of an age regressor (issue #13): predictions.csv with the
gap corrected by the training run's stored correction (hand-made numbers), gap groups as the
design, the gap columns as regressors, and clear errors."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from brainage.errors import InferError
from brainage.infer import infer
from brainage.inference.predictions import stored_correction
from tests.inference.synthetic_runs import compose_infer

# gap = predicted - age is fitted on validation as gap = -0.5 * age + 20 (hand-made numbers).
CORRECTION = {"gap_slope": -0.5, "gap_intercept": 20.0, "prediction_slope": 0.5,
              "prediction_intercept": 20.0, "n": 8}
COLUMNS = ["subject_id", "age", "predicted_age", "gap", "gap_corrected",
           "predicted_age_corrected", "gap_prediction_corrected"]


def _regression_run(tiny_explain, base, correction=CORRECTION) -> dict:
    """The tiny explain run made the explain run of a regression: ``task: regression``, each
    subject's predicted age, gap groups as its "bin", and the training run's metrics.json."""
    shutil.copytree(tiny_explain["base"], base)
    explain = base / "outputs" / "explain" / tiny_explain["explain"].name
    train = base / "outputs" / "train" / tiny_explain["train"].name
    summary = json.loads((explain / "explain.json").read_text())
    summary.update(train_dir=str(train), model_path=str(train / "model.keras"), task="regression")
    (explain / "explain.json").write_text(json.dumps(summary))
    subjects = pd.read_csv(explain / "subjects.csv", dtype={"subject_id": str})
    rng = np.random.default_rng(3)
    subjects["predicted_age"] = 0.5 * subjects["age"] + 25 + rng.normal(0, 3, len(subjects))
    gap = subjects["predicted_age"] - subjects["age"]
    subjects["gap_corrected"] = gap - (-0.5 * subjects["age"] + 20.0)
    subjects["bin"] = (subjects["gap_corrected"] > subjects["gap_corrected"].median()).astype(int)
    subjects.to_csv(explain / "subjects.csv", index=False)
    (train / "metrics.json").write_text(json.dumps({
        "task": "regression", "age_gap": {"correction": correction, "fitted_on": "val",
                                          "problem": None if correction else "slope -0.1"}}))
    return {"base": base, "explain": explain, "train": train, "outputs": base / "outputs",
            "subjects": subjects}


@pytest.fixture(scope="module")
def regression_infer(tiny_explain, tmp_path_factory):
    run = _regression_run(tiny_explain, tmp_path_factory.mktemp("regression_infer") / "base")
    out = run["base"] / "infer"
    summary = infer(compose_infer(run, "voxelwise.enabled=false", "covariates=[]"), out)
    return run, out, summary


@pytest.mark.slow
def test_predictions_use_the_stored_correction(regression_infer):
    run, out, summary = regression_infer
    table = pd.read_csv(out / "predictions.csv", dtype={"subject_id": str})
    assert list(table.columns) == COLUMNS
    subjects = run["subjects"]
    assert list(table["subject_id"]) == list(subjects["subject_id"])
    age, predicted = subjects["age"].to_numpy(float), subjects["predicted_age"].to_numpy(float)
    np.testing.assert_allclose(table["predicted_age"], predicted)
    np.testing.assert_allclose(table["gap"], predicted - age)
    np.testing.assert_allclose(table["gap_corrected"], predicted - age - (-0.5 * age + 20.0))
    np.testing.assert_allclose(table["predicted_age_corrected"], (predicted - 20.0) / 0.5)
    np.testing.assert_allclose(table["gap_prediction_corrected"], (predicted - 20.0) / 0.5 - age)
    assert summary["task"] == "regression" and summary["predictions"] == "predictions.csv"
    assert summary["gap_correction"]["correction"] == CORRECTION
    assert summary["gap_correction"]["from"] == str(run["train"] / "metrics.json")
    assert summary["mae_subjects"] == pytest.approx(np.abs(predicted - age).mean())
    assert "Age regression: predicted age and brain-age gap" in (out / "report.html").read_text()


def test_the_default_design_compares_the_gap_groups(regression_infer):
    run, out, summary = regression_infer
    design = summary["design"]
    assert design["name"] == "highgap_vs_lowgap" and design["labels"] == ["lowgap", "highgap"]
    n_high = int((run["subjects"]["bin"] == 1).sum())
    assert design["n"] == {"lowgap": len(run["subjects"]) - n_high, "highgap": n_high}
    table = pd.read_csv(out / "regions" / "custom_inference.csv")
    assert set(table["contrast"]) == {"highgap_vs_lowgap"}


@pytest.mark.slow
def test_a_gap_column_is_a_regressor(regression_infer, tmp_path):
    run, _, _ = regression_infer
    summary = infer(compose_infer(run, "voxelwise.enabled=false", "covariates=[]",
                                  "design.kind=regressor", "design.column=gap_prediction_corrected"),
                    tmp_path / "out")
    assert summary["design"]["name"] == "gap_prediction_corrected"
    assert summary["design"]["n"] == {"subjects": len(run["subjects"])}


def test_correct_design_and_bad_groups_are_refused(regression_infer, tmp_path):
    run, _, _ = regression_infer
    with pytest.raises(InferError, match="design.kind=correct: the explain run is of an age "
                                         "regressor"):
        infer(compose_infer(run, "design.kind=correct"), tmp_path / "a")
    with pytest.raises(InferError, match=r"design.groups=\[0, 2\]: a regression run's explained "
                                         "subjects have two gap groups"):
        infer(compose_infer(run, "design.groups=[0,2]"), tmp_path / "b")


def test_a_missing_or_malformed_correction_is_a_clear_error(tiny_explain, tmp_path):
    run = _regression_run(tiny_explain, tmp_path / "base")
    (run["train"] / "metrics.json").unlink()
    with pytest.raises(InferError, match="metrics.json is missing: a regression run's predictions "
                                         "need the bias correction"):
        infer(compose_infer(run, "voxelwise.enabled=false"), tmp_path / "a")
    (run["train"] / "metrics.json").write_text(json.dumps({"task": "regression"}))
    with pytest.raises(InferError, match="has no age_gap.correction"):
        stored_correction(run["train"])
    (run["train"] / "metrics.json").write_text(json.dumps(
        {"age_gap": {"correction": {"gap_slope": 1.0}}}))
    with pytest.raises(InferError, match="age_gap.correction lacks gap_intercept, "
                                         "prediction_slope, prediction_intercept, n"):
        stored_correction(run["train"])
    (run["train"] / "metrics.json").write_text("[1, 2]")
    with pytest.raises(InferError, match="is not a metrics.json object"):
        stored_correction(run["train"])


@pytest.mark.slow
def test_a_run_without_a_correction_gives_nan_corrected_gaps(tiny_explain, tmp_path):
    """As training's own test_predictions.csv: an undertrained model has no correction."""
    run = _regression_run(tiny_explain, tmp_path / "base", correction=None)
    summary = infer(compose_infer(run, "voxelwise.enabled=false", "covariates=[]"), tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert table["gap_corrected"].isna().all() and table["gap"].notna().all()
    assert summary["gap_correction"] == {"from": str(run["train"] / "metrics.json"),
                                         "fitted_on": "val", "correction": None,
                                         "problem": "slope -0.1"}

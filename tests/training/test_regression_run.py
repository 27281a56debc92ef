"""A tiny end-to-end regression run of the training stage (``model.task=regression``): the age in
years, its metrics and intervals, the corrected gap, the baselines' MAE, and the files."""
import json

import keras
import numpy as np
import pandas as pd
import pytest

from brainage.train import train
from tests.builders import compose_train, tiny_data


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("regression") / "run"
    data = tiny_data()
    cfg = compose_train("model.task=regression", "trainer.epochs=6", "trainer.learning_rate=3e-3",
                        "seed=1")
    return {"run": run, "data": data, "metrics": train(cfg, run_dir=run, data=data)}


@pytest.mark.slow
def test_the_run_writes_the_regression_files(regression_run):
    run = regression_run["run"]
    for name in ("model.keras", "metrics.json", "history.csv", "split.csv",
                 "test_predictions.csv", "training_curves.png", "predicted_age.png",
                 "age_gap.png"):
        assert (run / name).is_file(), name
    assert not (run / "confusion_matrix.png").exists()
    history = pd.read_csv(run / "history.csv")
    assert list(history.columns) == ["epoch", "loss", "mae", "val_loss", "val_mae", "lr",
                                     "seconds"]
    assert len(history) == 6


@pytest.mark.slow
def test_predictions_are_ages_in_years_with_the_gap(regression_run):
    run, data = regression_run["run"], regression_run["data"]
    table = pd.read_csv(run / "test_predictions.csv", dtype={"subject_id": str})
    test = data.table.iloc[data.indices("test")]
    assert list(table["subject_id"]) == list(test["subject_id"])
    np.testing.assert_allclose(table["age"], test["age"])
    np.testing.assert_allclose(table["gap"], table["predicted_age"] - table["age"], atol=1e-6)
    assert table["gap_corrected"].notna().all()
    model = keras.saving.load_model(run / "model.keras")
    x = np.asarray(data.volumes[data.indices("test")], np.float32)[..., None]
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0))[:, 0],
                               table["predicted_age"], rtol=1e-4, atol=1e-3)
    # Saved with the head folded into one Dense "age" (the chain the relevance methods expect).
    assert [layer.name for layer in model.layers][-2:] == ["dense1", "age"]
    ages = data.table["age"].to_numpy(dtype=float)[data.indices("train")]
    scale = regression_run["metrics"]["age_standardisation"]
    assert scale["mean"] == pytest.approx(ages.mean()) and scale["sd"] == pytest.approx(ages.std())
    # Years, not standardised units: the predictions span decades, as the ages do.
    assert table["predicted_age"].max() - table["predicted_age"].min() > 15


@pytest.mark.slow
def test_metrics_have_intervals_the_gap_correction_and_the_baselines(regression_run):
    metrics = json.loads((regression_run["run"] / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(regression_run["metrics"], allow_nan=False))
    assert metrics["task"] == "regression" and metrics["loss"] == "mae"
    for key in ("mae", "rmse", "pearson_r", "r2"):
        low, high = metrics[f"{key}_ci95"]
        assert low <= metrics[key] <= high, key
    assert metrics["mae"] < 20 and metrics["pearson_r"] > 0.5  # it learnt something
    gap = metrics["age_gap"]
    assert gap["fitted_on"] == "val" and gap["correction"]["n"] == len(
        regression_run["data"].indices("val"))
    assert gap["test_abs_corr_gap_corrected_age"] == pytest.approx(
        abs(gap["test_corr_with_age"]["gap_corrected"]))
    assert set(metrics["baselines"]) == {"ridge_age_blocks", "ridge_age_regions"}
    for entry in metrics["baselines"].values():
        assert entry["mae"] == entry["test_mae_years"] > 0
    assert metrics["monitor"] == "val_loss" and metrics["best_epoch"] >= 1


@pytest.mark.slow
def test_the_predicted_ages_are_scored_in_the_age_bins_beside_the_baselines(regression_run):
    run, data = regression_run["run"], regression_run["data"]
    binned = json.loads((run / "metrics.json").read_text())["binned"]
    table = pd.read_csv(run / "test_predictions.csv")
    # Independently of the product: np.digitize at the inner edges (10-39, 40-69, 70-100).
    predicted_bins = np.digitize(table["predicted_age"], [40, 70])
    true_bins = data.table["bin"].to_numpy()[data.indices("test")]
    assert binned["test_accuracy"] == pytest.approx(np.mean(predicted_bins == true_bins))
    assert binned["test_n"] == len(table) and np.sum(binned["confusion_matrix"]) == len(table)
    low, high = binned["test_accuracy_ci95"]
    assert low <= binned["test_accuracy"] <= high

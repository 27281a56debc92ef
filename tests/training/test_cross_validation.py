"""Stratified k-fold cross-validation: the folds' splits and a k = 2 run of the training stage."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from brainage.errors import TrainError
from brainage.train import train
from brainage.training.baselines import suite
from brainage.training.cross_validation import fold_data, fold_split
from brainage.training.settings import TrainSettings
from tests.builders import compose_train, tiny_data


def test_every_subject_is_tested_once_and_folds_are_stratified():
    bins = np.repeat([0, 1, 2], [10, 12, 9])
    splits = [fold_split(bins, 3, fold, seed=5, val_fraction=0.25) for fold in range(3)]
    tested = np.stack([s == "test" for s in splits])
    assert (tested.sum(axis=0) == 1).all()  # each subject in exactly one test fold
    for split in splits:
        for k, n in zip(range(3), (10, 12, 9)):
            in_bin = split[bins == k]
            assert abs((in_bin == "test").sum() - n / 3) < 1  # stratified
            rest = (in_bin != "test").sum()
            assert (in_bin == "val").sum() == max(round(rest * 0.25), 1)
    np.testing.assert_array_equal(splits[1], fold_split(bins, 3, 1, seed=5, val_fraction=0.25))
    assert not np.array_equal(splits[1], fold_split(bins, 3, 1, seed=6, val_fraction=0.25))
    with pytest.raises(TrainError, match="cv_folds=4: the smallest age bin has 3 subjects"):
        fold_split(np.repeat([0, 1], [3, 8]), 4, 0, seed=0, val_fraction=0.2)


@pytest.mark.parametrize("override, message", [
    ("trainer.cv_folds=1", "trainer.cv_folds=1; expected null"),
    ("trainer.cv_fold=0", "trainer.cv_fold=0 needs trainer.cv_folds=k"),
    ("trainer.cv_folds=3 trainer.cv_fold=3", "0 <= cv_fold < k"),
])
def test_bad_fold_settings_are_train_errors(override, message):
    with pytest.raises(TrainError, match=message.replace("(", r"\(").replace(".", r"\.")):
        TrainSettings.from_cfg(compose_train(*override.split()))


@pytest.mark.slow
def test_two_fold_cross_validation_of_the_training_stage(tmp_path, monkeypatch):
    seen = []
    real = suite.split_features

    def spy(features, data):
        seen.append(data.split_table().set_index("subject_id")["split"].to_dict())
        return real(features, data)

    monkeypatch.setattr(suite, "split_features", spy)
    cfg = compose_train("trainer.cv_folds=2", "trainer.epochs=2", "seed=4",
                        "trainer.baselines.models=[ridge_age_blocks]")
    run = tmp_path / "cv"
    summary = train(cfg, run_dir=run, data=tiny_data())

    splits = []
    for fold in (0, 1):
        fold_run = run / f"fold{fold}"
        metrics = json.loads((fold_run / "metrics.json").read_text())
        assert (metrics["cv_folds"], metrics["cv_fold"]) == (2, fold)
        assert (fold_run / "model.keras").is_file() and (fold_run / "confusion_matrix.png").is_file()
        split = pd.read_csv(fold_run / "split.csv", dtype={"subject_id": str})
        assert split.groupby("bin")["split"].apply(lambda s: (s == "test").sum()).tolist() == [10] * 3
        # The fold's baselines were fitted on the fold's split, not the data stage's.
        assert seen[fold] == split.set_index("subject_id")["split"].to_dict()
        # Its saved config names the fold: resuming it (or cv_fold=i alone) gives this split.
        saved = OmegaConf.load(fold_run / "checkpoint" / "config.yaml")
        assert (saved.trainer.cv_folds, saved.trainer.cv_fold) == (2, fold)
        again = fold_data(tiny_data(), TrainSettings.from_cfg(saved)).split_table()
        assert again["split"].tolist() == split["split"].tolist()
        splits.append(split.set_index("subject_id")["split"])
        assert summary["cnn"]["per_fold"][fold] == metrics["test_accuracy"]
    tested = [set(s.index[s == "test"]) for s in splits]
    assert not tested[0] & tested[1] and len(tested[0] | tested[1]) == 60
    # Each fold is a run the other stages open, and the cross-validation an ensemble of its folds.
    from brainage.ensemble.members import member_dirs, stands_for_runs
    from brainage.runs import read_record
    from brainage.trained.run import read_run_config

    for fold in (0, 1):
        assert read_run_config(run / f"fold{fold}").trainer.cv_fold == fold
        assert read_record(run / f"fold{fold}").state == "finished"
    assert [Path(d) for d in member_dirs([run])] == [run / "fold0", run / "fold1"]
    assert stands_for_runs(run) and not stands_for_runs(run / "fold0")   # train_dir=<run>: both folds

    table = pd.read_csv(run / "sweep.csv")
    assert table["run"].tolist() == ["fold0", "fold1"] and table["cv_fold"].tolist() == [0, 1]
    means = pd.read_csv(run / "sweep_summary.csv")
    assert means.loc[0, "n"] == 2
    assert means.loc[0, "test_accuracy_mean"] == pytest.approx(summary["cnn"]["mean"])
    assert means.loc[0, "test_accuracy_sd"] == pytest.approx(
        np.std(summary["cnn"]["per_fold"], ddof=1))
    assert means.loc[0, "baseline_ridge_age_blocks_mean"] == pytest.approx(
        summary["ridge_age_blocks"]["mean"])
    assert "Mean and SD over cv_fold" in (run / "sweep.md").read_text()

    with pytest.raises(TrainError, match="resumed fold by fold: trainer.resume=<run>/fold<i>"):
        train(compose_train("trainer.cv_folds=2", f"trainer.resume={run}"), data=tiny_data())


@pytest.mark.slow
def test_two_fold_cross_validation_of_a_regressor(tmp_path):
    """model.task=regression with trainer.cv_folds=2: folds stratified by age bin, each fold a
    regression sub-run, the fold table with mean ± SD of MAE, RMSE, r and R² (and baselines' MAE)."""
    cfg = compose_train("model.task=regression", "trainer.cv_folds=2", "trainer.epochs=2",
                        "trainer.learning_rate=3e-3", "seed=4",
                        "trainer.baselines.models=[ridge_age_blocks]")
    run = tmp_path / "cv"
    summary = train(cfg, run_dir=run, data=tiny_data())

    fold_metrics = []
    for fold in (0, 1):
        fold_run = run / f"fold{fold}"
        metrics = json.loads((fold_run / "metrics.json").read_text())
        fold_metrics.append(metrics)
        assert metrics["task"] == "regression" and (metrics["cv_folds"], metrics["cv_fold"]) == (2, fold)
        assert (fold_run / "test_predictions.csv").is_file()
        split = pd.read_csv(fold_run / "split.csv", dtype={"subject_id": str})
        # Stratified by age bin: half of each bin's 20 subjects tested in each fold.
        assert split.groupby("bin")["split"].apply(lambda s: (s == "test").sum()).tolist() == [10] * 3
        predictions = pd.read_csv(fold_run / "test_predictions.csv", dtype={"subject_id": str})
        assert sorted(predictions["subject_id"]) == sorted(split.loc[split["split"] == "test",
                                                                     "subject_id"])
    for key in ("mae", "rmse", "pearson_r", "r2"):
        values = np.array([m[key] for m in fold_metrics], dtype=float)
        entry = summary["cnn"][key]
        np.testing.assert_allclose(entry["per_fold"], values)
        assert entry["mean"] == pytest.approx(values.mean())
        assert entry["sd"] == pytest.approx(values.std(ddof=1))
    baseline = [m["baselines"]["ridge_age_blocks"]["mae"] for m in fold_metrics]
    assert summary["ridge_age_blocks"]["mae"]["mean"] == pytest.approx(np.mean(baseline))
    binned = [m["binned"]["test_accuracy"] for m in fold_metrics]
    np.testing.assert_allclose(summary["cnn"]["binned_accuracy"]["per_fold"], binned)
    ridge_binned = [m["baselines"]["ridge_age_blocks"]["test_accuracy"] for m in fold_metrics]
    assert summary["ridge_age_blocks"]["binned_accuracy"]["mean"] == pytest.approx(np.mean(ridge_binned))

    table = pd.read_csv(run / "sweep.csv")
    assert table["run"].tolist() == ["fold0", "fold1"] and table["cv_fold"].tolist() == [0, 1]
    np.testing.assert_allclose(table["test_mae"], [m["mae"] for m in fold_metrics])
    np.testing.assert_allclose(table["baseline_ridge_age_blocks"], baseline)
    np.testing.assert_allclose(table["test_binned_accuracy"], binned)
    np.testing.assert_allclose(table["baseline_ridge_age_blocks_binned_accuracy"], ridge_binned)
    assert "test_accuracy" not in table.columns
    means = pd.read_csv(run / "sweep_summary.csv")
    assert len(means) == 1 and means.loc[0, "n"] == 2
    for key in ("mae", "rmse", "pearson_r", "r2"):
        assert means.loc[0, f"test_{key}_mean"] == pytest.approx(summary["cnn"][key]["mean"])
        assert means.loc[0, f"test_{key}_sd"] == pytest.approx(summary["cnn"][key]["sd"])
    assert "test_mae_mean" in (run / "sweep.md").read_text()

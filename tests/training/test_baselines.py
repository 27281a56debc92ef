"""Baselines: their features, the exact reparametrisation, penalty choice, settings."""
import numpy as np
import pytest
from omegaconf import OmegaConf

from brainage.errors import TrainError
from brainage.training.baselines import models
from brainage.training.baselines.catalogue import BASELINES
from brainage.training.baselines.features import RegionMeans, atlas_on_grid, block_means
from brainage.training.baselines.models import (
    TrainingRowBasis,
    ages_to_bins,
    fit_baseline,
    split_features,
)
from brainage.training.baselines.settings import BaselineSettings
from brainage.training.baselines.suite import fit_baselines
from tests.builders import compose_train, tiny_data


def test_block_means_average_every_voxel_once(rng):
    volumes = rng.uniform(0, 1, (3, 7, 8, 9)).astype(np.float32)
    got = block_means(volumes, 4).reshape(3, 2, 2, 3)
    for i, j, k in np.ndindex(2, 2, 3):
        block = volumes[:, 4 * i:4 * i + 4, 4 * j:4 * j + 4, 4 * k:4 * k + 4]  # edges: partial
        np.testing.assert_allclose(got[:, i, j, k], block.reshape(3, -1).mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(block_means(volumes, 1), volumes.reshape(3, -1), rtol=1e-7)


def test_region_means_are_the_mean_inside_each_label(rng):
    labels = np.zeros((7, 8, 9), np.int16)
    labels[:3] = 4
    labels[5:, :2] = 9
    labels[6, 7, 8] = 2
    volumes = rng.uniform(0, 1, (2,) + labels.shape)
    regions = RegionMeans(labels, {4: "Left_A", 9: "B"})
    assert regions.labels.tolist() == [2, 4, 9] and regions.names == ["label_2", "Left_A", "B"]
    expected = [[v[labels == k].mean() for k in (2, 4, 9)] for v in volumes]
    np.testing.assert_allclose(regions(volumes), expected, rtol=1e-6)
    with pytest.raises(TrainError, match="no atlas region overlaps"):
        RegionMeans(np.zeros((2, 2, 2), int), {})


def test_the_bundled_atlas_lands_on_the_cohort_grid():
    data = tiny_data()
    regions = atlas_on_grid("neuromorphometrics", data.grid)
    assert len(regions.labels) > 5 and all(isinstance(n, str) for n in regions.names)
    assert regions(data.volumes[:2]).shape == (2, len(regions.labels))
    with pytest.raises(TrainError, match="trainer.baselines.atlas=nowhere.nii.gz"):
        atlas_on_grid("nowhere.nii.gz", data.grid)


@pytest.mark.parametrize("n_features", [6, 300])  # fewer and more features than subjects
def test_the_training_row_basis_changes_no_prediction(rng, n_features):
    """L2-penalised fits on the basis equal fits on the standardised features themselves."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    x = rng.normal(size=(40, n_features)) + rng.normal(size=n_features)
    x[:, 0] = 3.0  # a constant feature, like the voxels outside the brain
    y = (x[:, 1] + x[:, 2] + rng.normal(0, 1, 40) > 0).astype(int)
    train, test = slice(0, 30), slice(30, None)
    basis = TrainingRowBasis().fit(x[train])
    assert basis.basis_.shape[1] <= min(29, n_features)
    np.testing.assert_allclose(basis.basis_.T @ basis.basis_, np.eye(basis.basis_.shape[1]),
                               atol=1e-8)
    scaler = StandardScaler().fit(x[train])
    for make in (lambda: LogisticRegression(C=0.3, tol=1e-10, max_iter=10000),
                 lambda: Ridge(alpha=2.0)):
        direct = make().fit(scaler.transform(x[train]), y[train])
        rotated = make().fit(basis.transform(x[train]), y[train])
        np.testing.assert_allclose(rotated.decision_function(basis.transform(x[test]))
                                   if hasattr(rotated, "decision_function")
                                   else rotated.predict(basis.transform(x[test])),
                                   direct.decision_function(scaler.transform(x[test]))
                                   if hasattr(direct, "decision_function")
                                   else direct.predict(scaler.transform(x[test])),
                                   rtol=1e-5, atol=1e-6)


def test_a_feature_that_barely_varies_in_training_is_left_out(rng):
    """A block where one training subject has a trace of GM: standardised, a test subject with
    GM there would land a thousand SDs out and its predicted age hundreds of years off."""
    from sklearn.linear_model import Ridge

    x = rng.uniform(0.2, 0.8, size=(40, 50))
    age = 20 + 60 * x[:, :5].mean(axis=1)
    x[:, 7] = 0.0
    x[3, 7] = 1e-5                                       # the trace, in a training subject
    x[35, 7] = 0.3                                       # GM there in a test subject
    train, test = slice(0, 30), slice(30, None)
    basis = TrainingRowBasis().fit(x[train])
    assert not basis.kept_[7] and basis.kept_.sum() == 49
    without = np.delete(x, 7, axis=1)
    reference = TrainingRowBasis().fit(without[train])
    ridge = Ridge(alpha=1.0).fit(basis.transform(x[train]), age[train])
    expected = Ridge(alpha=1.0).fit(reference.transform(without[train]), age[train])
    np.testing.assert_allclose(ridge.predict(basis.transform(x[test])),
                               expected.predict(reference.transform(without[test])), rtol=1e-10)
    assert np.abs(ridge.predict(basis.transform(x[test])) - age[test]).max() < 30


def test_predicted_ages_fall_into_the_runs_bins():
    edges = [10, 40, 70, 101]
    assert ages_to_bins([-5, 10, 39.9, 40, 69.99, 70, 100.5, 101, 250], edges).tolist() == [
        0, 0, 0, 1, 1, 2, 2, 2, 2]


def test_the_penalty_is_chosen_on_the_validation_split(monkeypatch):
    data = tiny_data()
    seen = []
    real_predict = models._predict

    def spy(baseline, model, x, edges, n_classes):
        seen.append(len(x))
        return real_predict(baseline, model, x, edges, n_classes)

    monkeypatch.setattr(models, "_predict", spy)
    x = split_features(block_means(data.volumes, 4), data)
    entry = fit_baseline(BASELINES["logistic_blocks"], x, data, [1e-4, 1e-2, 1.0])
    # Three validation predictions (one per penalty), then the test split once.
    assert seen == [12, 12, 12, 12]
    assert entry["penalty"]["name"] == "C" and entry["penalty"]["value"] in (1e-4, 1e-2, 1.0)
    assert entry["test_n"] == 12 and len(entry["test_accuracy_ci95"]) == 2
    ridge = fit_baseline(BASELINES["ridge_age_blocks"], x, data, [1.0])
    assert ridge["penalty"] == {"name": "alpha", "value": 1.0, "at_grid_edge": True}
    assert ridge["test_mae_years"] > 0 and ridge["val_loss_kind"] == "mae_years"


def test_every_baseline_on_a_tiny_cohort():
    settings = BaselineSettings.from_cfg(compose_train().trainer.baselines)
    results = fit_baselines(settings, tiny_data())
    assert list(results) == list(settings.models) == list(BASELINES)
    for name, entry in results.items():
        assert 0 <= entry["test_accuracy"] <= 1 and len(entry["test_per_bin_accuracy"]) == 3
        assert entry["test_accuracy_ci95"][0] <= entry["test_accuracy"], name
        assert np.sum(entry["confusion_matrix"]) == 12
    assert results["logistic_blocks"]["n_features"] == 5 * 6 * 5  # 20 x 22 x 19 in blocks of 4
    assert results["logistic_regions"]["atlas"] == "neuromorphometrics"
    # The box whose mean encodes the bin is easy for a linear model.
    assert max(e["test_accuracy"] for e in results.values()) >= 0.75
    off = BaselineSettings.from_cfg(compose_train("trainer.baselines.enabled=false").trainer.baselines)
    assert fit_baselines(off, tiny_data()) == {}


@pytest.mark.parametrize("override, message", [
    ("trainer.baselines.models=[ridge_age_blocks,svm]", "unknown svm; expected some of"),
    ("trainer.baselines.block_size=0", "block_size=0; expected >= 1"),
    ("trainer.baselines.ridge_alphas=[]", "ridge_alphas=[]; expected one or more"),
    ("trainer.baselines.logistic_cs=[1.0,-1.0]", "logistic_cs=[1.0, -1.0]; expected one or more"),
    ("trainer.baselines.enabled=often", "trainer.baselines.enabled='often'; expected true or false"),
    ("trainer.baselines.atlas=null", "trainer.baselines.atlas is null; expected a bundled atlas"),
    ("trainer.baselines.models=ridge", "trainer.baselines.models='ridge'; expected some of"),
])
def test_bad_baseline_settings_are_train_errors(override, message):
    with pytest.raises(TrainError, match=message.replace("[", r"\[").replace("]", r"\]")):
        BaselineSettings.from_cfg(compose_train(override).trainer.baselines)


def test_a_run_saved_before_baselines_existed_has_none():
    assert BaselineSettings.from_cfg(None).enabled is False
    node = OmegaConf.create({"enabled": False, "models": ["svm"], "block_size": 0, "atlas": "x",
                             "ridge_alphas": [], "logistic_cs": []})
    assert BaselineSettings.from_cfg(node).enabled is False  # off: nothing else is checked


@pytest.mark.slow
def test_the_baselines_see_exactly_the_networks_split(stage_run):
    import pandas as pd

    run = stage_run["run"]
    split = pd.read_csv(run / "split.csv", dtype={"subject_id": str})
    expected = {s: sorted(split.loc[split["split"] == s, "subject_id"]) for s in ("train", "val", "test")}
    # One feature table per kind (block means, region means), each split as the network's.
    assert len(stage_run["baseline_splits"]) == 2
    assert all(seen == expected for seen in stage_run["baseline_splits"])
    tested = pd.read_csv(run / "test_predictions.csv", dtype={"subject_id": str})
    assert sorted(tested["subject_id"]) == expected["test"]
    baselines = stage_run["metrics"]["baselines"]
    assert list(baselines) == list(BASELINES)
    assert all(entry["test_n"] == len(expected["test"]) for entry in baselines.values())

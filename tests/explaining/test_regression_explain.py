"""Explaining an age regressor (issue #13): the age output is the target, DTD's relevance sums to
the predicted age, groups are high- vs low-gap subjects, class targets are refused; a tiny
end-to-end run (train with model.task=regression, then explain)."""
import json

import keras
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from brainage.data.age_gap import AgeBiasCorrection
from brainage.errors import ExplainError
from brainage.explain import explain
from brainage.explaining.age_groups import GapGroups, check_regression_targets
from brainage.model import build_model, fold_age_head
from brainage.relevance import make_analyzer
from brainage.train import train
from tests.builders import (
    TRAIN_CROP,
    TRAIN_SOURCE,
    cohort_overrides,
    compose_stage,
    compose_train,
    pin_explainer,
    write_cohort,
    write_gm,
)


def _regressor():
    keras.utils.set_random_seed(2)
    model = build_model(TRAIN_CROP + (1,), widths=(2, 4), dense_units=16, age_scale=(52.0, 19.0))
    # Standardised outputs of both signs (subjects younger and older than the mean).
    z = model.get_layer("age_standardised")
    kernel, _ = z.get_weights()
    z.set_weights([kernel, np.array([-0.02], np.float32)])
    x = np.random.default_rng(4).uniform(0, 1, (6,) + TRAIN_CROP + (1,)).astype("float32")
    return model, x


def test_folding_the_head_keeps_the_ages():
    model, x = _regressor()
    folded = fold_age_head(model)
    assert [layer.name for layer in folded.layers][-2:] == ["dense1", "age"]
    assert "age_standardised" not in [layer.name for layer in folded.layers]
    np.testing.assert_allclose(np.asarray(folded(x)), np.asarray(model(x)), rtol=1e-6)
    assert fold_age_head(folded) is folded


def test_dtd_relevance_of_the_age_output_sums_to_the_predicted_age():
    model, x = _regressor()
    predicted = np.asarray(model(x))[:, 0]
    standardised = (predicted - 52.0) / 19.0
    assert standardised.min() < 0 < standardised.max() or np.all(standardised < 0)
    explanation = make_analyzer(fold_age_head(model), "dtd", compile=False).explain(
        x, target="predicted")
    np.testing.assert_array_equal(explanation.target, 0)
    np.testing.assert_allclose(explanation.outputs, predicted, rtol=1e-5)
    # Every subject, younger or older than the mean: the map alone sums to the age in years.
    np.testing.assert_allclose(explanation.maps.sum(axis=(1, 2, 3, 4)), predicted, rtol=1e-4)
    assert explanation.max_rel_error < 1e-5
    assert 30 < predicted.mean() < 75  # years: the head's affine is in the output


def test_only_the_age_output_is_a_target():
    check_regression_targets(("predicted",), "run")
    for target, what in ((1, "class index 1"), ("true", "'true'"), ("all", "'all'")):
        with pytest.raises(ExplainError, match=f"target {what}: .* is a regression"):
            check_regression_targets((target,), "run")


def test_gap_groups_split_at_the_median_of_the_corrected_gap():
    correction = AgeBiasCorrection(gap_slope=-0.5, gap_intercept=20.0, prediction_slope=0.5,
                                   prediction_intercept=20.0, n=10)
    groups = GapGroups(correction, threshold=1.0)
    gaps = groups.corrected_gap([30, 60], [45, 50])  # gaps 15, -10; fits 5, -10
    np.testing.assert_allclose(gaps, [10, 0])
    np.testing.assert_array_equal(groups.group(gaps), [1, 0])
    raw = GapGroups(None, threshold=0.0)  # a run without a correction: the raw gap
    assert not raw.corrected and groups.corrected
    np.testing.assert_allclose(raw.corrected_gap([30, 60], [45, 50]), [15, -10])


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regression_explain")
    root = write_cohort(tmp / "cohort", n_per_bin=8, seed=2)
    cfg = compose_train(*cohort_overrides(root, tmp / "cache"), "model.task=regression",
                        "trainer.epochs=10", "trainer.learning_rate=3e-3",
                        "trainer.baselines.enabled=false", "seed=3")
    run = tmp / "outputs" / "train" / "2026-01-01_00-00-00"
    metrics = train(cfg, run_dir=run, data=None)
    (run / ".hydra").mkdir()
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")  # what Hydra writes beside a real run
    labels = np.zeros(TRAIN_SOURCE, np.int16)
    labels[5:13, 7:15, 5:12] = 5  # the box whose intensity encodes age
    labels[:, :, 15:] = 8
    write_gm(tmp / "atlas.nii.gz", labels)
    pd.DataFrame({"index": [5, 8], "name": ["Box", "Top"]}).to_csv(tmp / "atlas.csv", index=False)
    return {"run": run, "tmp": tmp, "metrics": metrics}


def _compose(regression_run, *overrides):
    return compose_stage("explain", f"train_dir={regression_run['run']}", "atlas=custom",
                         f"atlas.path={regression_run['tmp'] / 'atlas.nii.gz'}",
                         f"atlas.labels={regression_run['tmp'] / 'atlas.csv'}", "progress=false",
                         "figures.subjects=1", *pin_explainer(overrides))


@pytest.mark.slow
def test_a_regression_run_is_explained_by_gap_group(regression_run, tmp_path):
    summary = explain(_compose(regression_run, "explainer=dtd", "subjects=all"), tmp_path)
    assert summary["task"] == "regression"
    subjects = pd.read_csv(tmp_path / "subjects.csv", dtype={"subject_id": str})
    assert {"predicted_age", "gap_corrected"} <= set(subjects.columns)
    median = subjects["gap_corrected"].median()
    np.testing.assert_array_equal(subjects["bin"], (subjects["gap_corrected"] > median).astype(int))
    assert summary["gap_groups"]["split_at_median_gap_corrected"] == pytest.approx(median)
    conservation = pd.read_csv(tmp_path / "conservation.csv", dtype={"subject_id": str})
    merged = conservation.merge(subjects, on="subject_id")
    np.testing.assert_allclose(merged["output"], merged["predicted_age"], rtol=1e-4)
    # DTD: the map sums to the predicted age in years. A subject none of whose dense1 units
    # adds positively to the age has nothing for the top layer's z+ rule to pass on: its
    # relevance is absorbed whole (sum 0, rel_error 1) and it has no map to average.
    conserved = merged["rel_error"] < 1e-5
    assert conserved.mean() >= 0.9
    np.testing.assert_allclose(merged.loc[conserved, "relevance_sum"],
                               merged.loc[conserved, "predicted_age"], rtol=1e-5)
    assert (merged.loc[~conserved, "relevance_sum"] == 0).all()
    with_map = merged[conserved]
    assert summary["group_counts"] == {"dtd_highgap": int((with_map["bin"] == 1).sum()),
                                       "dtd_lowgap": int((with_map["bin"] == 0).sum())}
    assert len(subjects) == 24 and set(subjects["bin"]) == {0, 1}
    for group in ("lowgap", "highgap"):
        assert (tmp_path / "group" / f"dtd_{group}_mean.nii.gz").is_file()
    # The training run's correction, fitted on its validation split, is the one applied.
    c = json.loads((regression_run["run"] / "metrics.json").read_text())["age_gap"]["correction"]
    expected = (subjects["predicted_age"] - subjects["age"]
                - (c["gap_slope"] * subjects["age"] + c["gap_intercept"]))
    np.testing.assert_allclose(subjects["gap_corrected"], expected, rtol=1e-5, atol=1e-4)
    assert set(conservation["target"]) == {"predicted"} and set(conservation["class"]) == {0}
    regions = pd.read_csv(tmp_path / "regions" / "custom_summary.csv")
    assert set(regions["bin"]) == {0, 1} and "Box" in set(regions["region"])
    assert "MAE" in (tmp_path / "report.html").read_text()


@pytest.mark.slow
def test_a_class_target_on_a_regression_run_is_refused(regression_run, tmp_path):
    with pytest.raises(ExplainError, match="target class index 1: .* is a regression"):
        explain(_compose(regression_run, "explainer=dtd", "targets=[1]"), tmp_path)

"""The brain-age gap's bias correction on hand-made numbers, fitted on the validation split only,
and the regression metrics with their bootstrap intervals."""
import numpy as np
import pytest

from brainage.errors import TrainError
from brainage.training.age_gap import AgeBiasCorrection, gap_age_correlations, gap_table
from brainage.training.age_metrics import age_gap_results, binned_metrics, format_regression_summary, regression_metrics
from tests.builders import tiny_data


def test_both_corrections_on_hand_made_numbers():
    # predicted = 0.5 * age + 20 exactly: gap = -0.5 * age + 20.
    correction = AgeBiasCorrection.fit([20, 40, 60], [30, 40, 50])
    assert correction.prediction_slope == pytest.approx(0.5)
    assert correction.prediction_intercept == pytest.approx(20.0)
    assert correction.gap_slope == pytest.approx(-0.5)
    assert correction.gap_intercept == pytest.approx(20.0)
    # A subject of 30 predicted 45 (10 years above the fit's 35):
    assert correction.corrected_gap([30], [45])[0] == pytest.approx(15 - 5)
    assert correction.corrected_prediction([45])[0] == pytest.approx(50.0)
    table = gap_table(["a", "b"], [30, 70], [45, 55], correction)
    assert list(table.columns[:5]) == ["subject_id", "age", "predicted_age", "gap", "gap_corrected"]
    np.testing.assert_allclose(table["gap"], [15, -15])
    np.testing.assert_allclose(table["gap_corrected"], [10, 0], atol=1e-9)
    # The two corrected gaps differ by the factor a.
    np.testing.assert_allclose(table["gap_corrected"], 0.5 * table["gap_prediction_corrected"],
                               atol=1e-9)


def test_the_correction_removes_the_age_dependence_it_was_fitted_on():
    rng = np.random.default_rng(3)
    ages = rng.uniform(20, 80, 400)
    predicted = 0.7 * ages + 15 + rng.normal(0, 3, 400)  # regression to the mean
    correction = AgeBiasCorrection.fit(ages[:200], predicted[:200])
    table = gap_table(range(200), ages[200:], predicted[200:], correction)
    r = gap_age_correlations(table)
    assert r["gap"] < -0.5
    assert abs(r["gap_corrected"]) < 0.1


def test_a_prediction_that_does_not_grow_with_age_is_refused():
    with pytest.raises(TrainError, match="does not grow with age"):
        AgeBiasCorrection.fit([20, 40, 60], [50, 40, 30])
    with pytest.raises(TrainError, match="at least two"):
        AgeBiasCorrection.fit([40, 40], [41, 39])


def test_the_correction_is_fitted_on_validation_only():
    data = tiny_data()
    ages = data.table["age"].to_numpy(dtype=float)
    val = 0.8 * ages[data.indices("val")] + 9.0
    test = ages[data.indices("test")] + 1.0
    correction, table, entry = age_gap_results(data, test, val)
    assert entry["fitted_on"] == "val"
    assert correction.prediction_slope == pytest.approx(0.8)
    assert correction.prediction_intercept == pytest.approx(9.0)
    other_test = test + np.random.default_rng(0).normal(0, 10, len(test))
    other, other_table, _ = age_gap_results(data, other_test, val)
    assert other == correction
    assert not np.allclose(other_table["gap_corrected"], table["gap_corrected"])
    moved, _, _ = age_gap_results(data, test, val + 5.0)
    assert moved.prediction_intercept == pytest.approx(14.0)
    assert list(table["subject_id"]) == list(data.table["subject_id"].to_numpy()[data.indices("test")])


def test_regression_metrics_on_hand_made_numbers():
    ages = np.array([20.0, 30.0, 40.0, 50.0])
    predicted = np.array([22.0, 29.0, 43.0, 50.0])
    m = regression_metrics(ages, predicted, seed=0)
    assert m["mae"] == pytest.approx(1.5)
    assert m["rmse"] == pytest.approx(np.sqrt((4 + 1 + 9) / 4))
    assert m["r2"] == pytest.approx(1 - 14 / 500)
    assert m["pearson_r"] == pytest.approx(np.corrcoef(ages, predicted)[0, 1])
    assert m["test_n"] == 4


def test_bootstrap_intervals_are_seeded_and_hold_the_estimate():
    rng = np.random.default_rng(5)
    ages = rng.uniform(20, 80, 60)
    predicted = ages + rng.normal(0, 4, 60)
    first = regression_metrics(ages, predicted, seed=11)
    assert first == regression_metrics(ages, predicted, seed=11)
    assert first["mae_ci95"] != regression_metrics(ages, predicted, seed=12)["mae_ci95"]
    for key in ("mae", "rmse", "pearson_r", "r2"):
        low, high = first[f"{key}_ci95"]
        assert low < first[key] < high, key


def test_an_uncorrectable_model_still_gets_its_metrics():
    data = tiny_data()
    ages = data.table["age"].to_numpy(dtype=float)
    flat_val = np.full(len(data.indices("val")), 50.0)
    correction, table, entry = age_gap_results(data, ages[data.indices("test")], flat_val)
    assert entry["correction"] is None and "does not grow with age" in entry["problem"]
    assert table["gap_corrected"].isna().all()
    assert entry["test_abs_corr_gap_corrected_age"] is None


def test_the_corrected_gaps_correlation_with_age_has_a_bootstrap_interval():
    data = tiny_data()
    ages = data.table["age"].to_numpy(dtype=float)
    rng = np.random.default_rng(3)
    val = 0.8 * ages[data.indices("val")] + 9.0 + rng.normal(0, 2, len(data.indices("val")))
    test = 0.8 * ages[data.indices("test")] + 9.0 + rng.normal(0, 4, len(data.indices("test")))
    _, table, entry = age_gap_results(data, test, val, seed=5)
    low, high = entry["test_corr_gap_corrected_age_ci95"]
    r = np.corrcoef(table["age"], table["gap_corrected"])[0, 1]
    assert low < r < high and -1 <= low and high <= 1
    # seeded: the same seed gives the same interval, another seed another
    assert age_gap_results(data, test, val, seed=5)[2] == entry
    assert age_gap_results(data, test, val, seed=6)[2]["test_corr_gap_corrected_age_ci95"] != [low, high]
    # the interval narrows as 1/sqrt(n): a pure-noise gap over 2,000 hand-made subjects
    from brainage.training.age_metrics import _bootstrap, _interval
    big_ages = rng.uniform(20, 80, 2000)
    narrow = _interval(_bootstrap(big_ages, rng.normal(0, 3, 2000), 0, 500)["pearson_r"])
    assert narrow[0] < 0 < narrow[1] and narrow[1] - narrow[0] < 0.12


def test_an_uncorrectable_model_has_no_correlation_interval():
    data = tiny_data()
    ages = data.table["age"].to_numpy(dtype=float)
    flat_val = np.full(len(data.indices("val")), 50.0)
    _, _, entry = age_gap_results(data, ages[data.indices("test")], flat_val)
    assert entry["test_corr_gap_corrected_age_ci95"] is None


def test_predicted_ages_are_binned_like_the_age_baselines():
    data = tiny_data()
    test = data.indices("test")  # four subjects per bin: 10-39, 40-69, 70-100
    predicted = data.table["age"].to_numpy(dtype=float)[test].copy()
    predicted[0] = 5.0     # below the first edge: still the youngest bin (right)
    predicted[4] = 39.9    # a 40-69 subject predicted 39.9: wrong, in the youngest bin
    predicted[8] = 150.0   # beyond the last edge: the oldest bin (right)
    predicted[9] = 40.0    # a 70-100 subject predicted 40: the middle bin (wrong)
    binned = binned_metrics(data, predicted)
    assert binned["test_accuracy"] == pytest.approx(10 / 12)
    assert binned["confusion_matrix"] == [[4, 0, 0], [1, 3, 0], [0, 1, 3]]
    assert binned["test_per_bin_accuracy"] == pytest.approx([1.0, 0.75, 0.75])
    metrics = {**regression_metrics(data.table["age"].to_numpy(dtype=float)[test], predicted, seed=0),
               "age_gap": {"test_corr_with_age": {"gap": 0.1, "gap_corrected": 0.0}},
               "binned": binned, "baselines": {"ridge_age_regions": {
                   "mae": 1.5, "test_accuracy": 0.75, "penalty": {"name": "alpha", "value": 1.0}}}}
    lines = format_regression_summary(metrics).splitlines()
    assert "binned acc." in lines[-3]
    assert lines[-2].startswith("CNN") and "83.3 %" in lines[-2]
    assert "75.0 %" in lines[-1] and "alpha=1" in lines[-1]

"""Test metrics of a run and the summary table next to the seed's figures."""
import pytest

from brainage.data.cohort import bin_labels
from brainage.training.checkpoint import RunState
from brainage.training.metrics import (
    classification_metrics,
    counts_per_bin,
    format_summary,
    run_timings,
)
from tests.builders import tiny_data


def test_classification_metrics():
    metrics = classification_metrics([0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 0, 2, 2], 4)
    assert metrics["confusion_matrix"][0] == [1, 1, 0, 0]
    assert metrics["confusion_matrix"][2] == [1, 0, 2, 0]
    assert metrics["test_per_bin_accuracy"] == [0.5, 1.0, pytest.approx(2 / 3), None]
    assert metrics["test_accuracy"] == pytest.approx(5 / 7)
    assert metrics["test_balanced_accuracy"] == pytest.approx((0.5 + 1 + 2 / 3) / 3)


def test_summary_shows_the_seed_figures_only_for_the_seed_bins():
    metrics = classification_metrics([0, 1, 2], [0, 1, 1], 3)
    metrics.update(bin_edges=[10, 40, 70, 101], bin_labels=bin_labels([10, 40, 70, 101]))
    table = format_summary(metrics)
    assert "81.58" in table and "35.09" in table and "100.00" in table and "72.22" in table
    metrics.update(bin_edges=[10, 50, 70, 101], bin_labels=bin_labels([10, 50, 70, 101]))
    assert "81.58" not in format_summary(metrics)
    assert bin_labels([10, 40.5, 101]) == ["[10, 40.5)", "[40.5, 101)"]


def test_timings_leave_out_the_first_epoch_for_the_steady_rate():
    state = RunState(history=[{"seconds": 10.0}, {"seconds": 4.0}, {"seconds": 4.0}],
                     train_step_seconds=[8.0, 2.0, 3.0])
    timings = run_timings({"backend": "b"}, state, n_train=30, n_test=6, predict_seconds=2.0)
    assert timings["backend"] == "b"
    assert timings["train_seconds"] == 18.0 and timings["seconds_per_epoch"] == 6.0
    assert timings["train_volumes_per_s"] == pytest.approx(90 / 13)
    assert timings["train_volumes_per_s_after_first_epoch"] == pytest.approx(60 / 5)
    assert timings["predict_volumes_per_s"] == 3.0
    assert run_timings({}, RunState(), 30, 6, 0.0)["predict_volumes_per_s"] is None


def test_counts_per_bin_of_each_split():
    assert counts_per_bin(tiny_data(n_per_bin=20)) == {
        "train": [12, 12, 12], "val": [4, 4, 4], "test": [4, 4, 4]}


def test_summary_shows_intervals_and_the_baselines_beside_the_network():
    metrics = classification_metrics([0] * 12 + [1] * 12 + [2] * 12,
                                     [0] * 12 + [1] * 11 + [0] + [2] * 9 + [1] * 3, 3)
    metrics.update(bin_edges=[10, 40, 70, 101], bin_labels=bin_labels([10, 40, 70, 101]))
    ridge = classification_metrics([0, 1, 2, 2], [0, 1, 2, 1], 3)
    metrics["baselines"] = {"ridge_age_blocks": {
        **ridge, "penalty": {"name": "alpha", "value": 1000.0, "at_grid_edge": False}}}
    lines = format_summary(metrics).splitlines()
    assert lines[4].split() == ["overall", "36", "88.89", "(74.7-95.6)", "72.22"]
    assert lines[1].split() == ["10-39", "12", "100.00", "(75.8-100.0)", "81.58"]
    assert lines[-2].split() == ["CNN", "88.89", "(74.7-95.6)", "100.00", "91.67", "75.00",
                                 "88.89", "-"]
    assert lines[-1].split() == ["ridge_age_blocks", "75.00", "(30.1-95.4)", "100.00", "100.00",
                                 "50.00", "83.33", "alpha=1000"]
    del metrics["baselines"]
    assert "ridge_age_blocks" not in format_summary(metrics)

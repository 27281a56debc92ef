"""The digits stage end to end on a fast configuration, its summary and its command line."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from brainage import seed_digits as sd
from tests.builders import REPO, compose_stage

FAST = ["data.limit=400", "dense.hidden=[64,32]", "dense.epochs=4", "cnn.filters=[8,16,16]",
        "cnn.dense_units=16", "cnn.epochs=6", "cnn.learning_rate=3e-3", "examples=3"]


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("digits")
    return run_dir, sd.run_digits(compose_stage("digits", *FAST), run_dir)


@pytest.mark.slow
def test_fast_run_trains_above_chance_and_dtd_conserves(fast_run):
    tmp_path, summary = fast_run
    for name in ("figures/digits_dense.png", "figures/digits_cnn.png",
                 "figures/digits_misclassified.png", "digits.json", "digits.csv"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "digits.json").read_text())["data"].startswith("scikit-learn")
    table = pd.read_csv(tmp_path / "digits.csv")
    assert list(table["network"]) == ["dense", "cnn"]
    for name, r in summary["networks"].items():
        assert r["test_accuracy"] > 0.3, name  # chance is 0.1
        assert r["conservation_max_rel_error"] < 1e-4, name


@pytest.mark.slow
def test_anti_heatmap_pairs_cover_every_correct_digit_once(fast_run):
    _, summary = fast_run
    for name, r in summary["networks"].items():
        check, n_test = r["anti_heatmap"], r["n_test"]
        n_correct = n_test - r["misclassified"]
        assert n_correct == round(r["test_accuracy"] * n_test), name
        assert check["n_images"] == n_correct
        assert check["least_n_pairs"] == n_correct  # one least likely class per digit, never the chosen
        assert check["negative_n_pairs"] + check["positive_n_pairs"] == 9 * n_correct


@pytest.mark.slow
def test_claim_sentence_and_csv_carry_the_measured_numbers(fast_run):
    tmp_path, summary = fast_run
    table = pd.read_csv(tmp_path / "digits.csv").set_index("network")
    for name, r in summary["networks"].items():
        check = r["anti_heatmap"]
        assert r["claim"].startswith(f"{name}: least likely class")
        assert f"raw-map correlation {check['least_correlation_mean']:.4f}" in r["claim"]
        assert f"worst {check['least_max_abs_sum_worst']:.3f})" in r["claim"]
        exact = check["least_max_abs_sum_worst"] < 1e-3
        assert ("holds exactly" in r["claim"]) == exact
        assert ("does not hold" in r["claim"]) == (not exact and check["least_correlation_mean"] >= -0.95)
        for key in ("least_correlation_mean", "least_max_abs_sum_worst", "positive_n_pairs"):
            assert table.loc[name, f"anti_{key}"] == pytest.approx(check[key])
        assert table.loc[name, "test_accuracy"] == pytest.approx(r["test_accuracy"])


@pytest.mark.slow
def test_misclassified_example_correlation_is_reported_when_there_is_one(fast_run):
    _, summary = fast_run
    for r in summary["networks"].values():
        corr = r["misclassified_example_map_correlation"]
        assert (corr is None) == (r["misclassified"] == 0)
        if corr is not None:
            assert np.isfinite(corr)


@pytest.mark.slow
def test_report_lines_name_accuracy_conservation_and_claim(fast_run):
    run_dir, summary = fast_run
    lines = sd.report_lines(summary, run_dir)
    dense = summary["networks"]["dense"]
    assert lines[0] == summary["data"]
    assert lines[1] == (f"dense: test accuracy {100 * dense['test_accuracy']:.1f} %, DTD conservation "
                        f"max rel. error {dense['conservation_max_rel_error']:.1e}")
    assert lines[2] == "  " + dense["claim"] and lines[-1].endswith(str(run_dir))


def test_cli_rejects_a_bad_value_with_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "brainage.seed_digits", "examples=0",
                           f"hydra.run.dir={tmp_path}"], env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: digits: examples must be an integer >= 1, got 0"
    assert not (tmp_path / "figures").exists()

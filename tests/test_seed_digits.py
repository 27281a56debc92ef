"""Seed 000 §2.2.3 digits experiment: data, the anti-heatmap measurement, and a fast end-to-end run."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from brainage import seed_digits as sd

ROOT = Path(__file__).resolve().parents[1]


def test_digits_are_upsampled_to_28_in_unit_range():
    x, y = sd.load_digits_upsampled(28, limit=50)
    assert x.shape == (50, 28, 28, 1) and x.dtype == np.float32 and y.shape == (50,)
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
    assert set(np.unique(y)) <= set(range(10))


def test_seed_networks_have_the_seed_parameter_counts():
    assert sd.build_dense().count_params() == 266_610  # seed 000 §2.2.3
    assert sd.build_cnn().count_params() == 93_322


def test_normalisation_ranges(rng):
    maps = rng.standard_normal((3, 5, 4))
    h, a = sd.normalise_heatmap(maps), sd.normalise_antiheatmap(maps)
    np.testing.assert_allclose(h.min(axis=(1, 2)), 0)
    np.testing.assert_allclose(h.max(axis=(1, 2)), 1)
    np.testing.assert_allclose(a.min(axis=(1, 2)), -1)
    np.testing.assert_allclose(a.max(axis=(1, 2)), 0)


def test_anti_heatmap_check_recognises_exact_negatives_and_their_absence(rng):
    base = rng.uniform(0, 1, (4, 6, 6))
    logits = np.array([[3.0, -1.0, -2.0], [-1.0, 2.0, -3.0], [-2.0, -1.0, 1.0], [4.0, 1.0, -1.0]])
    exact = logits.T[:, :, None, None] * base[None]  # map of class k = logit_k x a shared map
    check = sd.anti_heatmap_check(exact, logits)
    assert check["least_max_abs_sum_worst"] < 1e-12 and check["least_correlation_mean"] == pytest.approx(-1)
    assert check["negative_share_within"] == 1.0 and check["negative_n_pairs"] == 7
    assert check["positive_n_pairs"] == 1 and check["positive_correlation_mean"] == pytest.approx(1)
    noisy = exact + rng.standard_normal(exact.shape)
    worse = sd.anti_heatmap_check(noisy, logits)
    assert worse["least_max_abs_sum_median"] > 0.1 and worse["least_correlation_mean"] > -0.9
    assert "does not hold" in sd._claim_sentence("x", worse)
    assert "holds exactly" in sd._claim_sentence("x", check)


def test_fast_run_trains_above_chance_and_dtd_conserves(tmp_path):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("digits", overrides=[
            "data.limit=400", "dense.hidden=[64,32]", "dense.epochs=4", "cnn.filters=[8,16,16]",
            "cnn.dense_units=16", "cnn.epochs=6", "cnn.learning_rate=3e-3", "examples=3"])
    summary = sd.run_digits(cfg, tmp_path)
    for name in ("figures/digits_dense.png", "figures/digits_cnn.png",
                 "figures/digits_misclassified.png", "digits.json", "digits.csv"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "digits.json").read_text())["data"].startswith("scikit-learn")
    table = pd.read_csv(tmp_path / "digits.csv")
    assert list(table["network"]) == ["dense", "cnn"]
    for name, r in summary["networks"].items():
        assert r["test_accuracy"] > 0.3, name  # chance is 0.1
        assert r["conservation_max_rel_error"] < 1e-4, name
        assert -1 <= r["anti_heatmap"]["least_correlation_mean"] <= 1

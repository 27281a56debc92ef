"""The anti-heatmap measurement on hand-made maps whose answer was computed by hand."""
import numpy as np
import pytest

from brainage.digits.antiheatmap import (
    anti_heatmap_check,
    claim_sentence,
    normalise_antiheatmap,
    normalise_heatmap,
    pearson,
)

UP, DOWN, SHUFFLED = [1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], [2.0, 1.0, 4.0, 3.0]


def hand_made():
    """Two images, three classes, four pixels.

    Image 0 chooses class 0 (map UP); its least likely class 2 has SHUFFLED (r = 0.6, normalised
    sum [-2/3, -2/3, 2/3, 2/3]); class 1 (logit 0.5 >= 0) has DOWN (r = -1, sum 0).
    Image 1 chooses class 1 (UP); its least likely class 0 has DOWN (r = -1, sum 0); class 2
    (logit 0 >= 0) has 2 * UP (r = +1, sum [-1, -1/3, 1/3, 1]).
    """
    maps = np.array([[UP, DOWN], [DOWN, UP], [SHUFFLED, [2 * v for v in UP]]])
    logits = np.array([[2.0, 0.5, -1.0], [-1.0, 3.0, 0.0]])
    return maps, logits


def test_normalisation_ranges(rng):
    maps = rng.standard_normal((3, 5, 4))
    h, a = normalise_heatmap(maps), normalise_antiheatmap(maps)
    np.testing.assert_allclose(h.min(axis=(1, 2)), 0)
    np.testing.assert_allclose(h.max(axis=(1, 2)), 1)
    np.testing.assert_allclose(a.min(axis=(1, 2)), -1)
    np.testing.assert_allclose(a.max(axis=(1, 2)), 0)


def test_pearson_of_hand_made_pairs():
    r = pearson(np.array([UP, UP, UP]), np.array([SHUFFLED, DOWN, [5.0, 5.0, 5.0, 5.0]]))
    np.testing.assert_allclose(r[:2], [0.6, -1.0])
    assert np.isnan(r[2])  # a constant map has no correlation


def test_check_on_hand_made_maps_gives_the_hand_computed_numbers():
    check = anti_heatmap_check(*hand_made())
    assert check["n_images"] == 2 and check["tolerance"] == 0.05
    expected_least = {"n_pairs": 2, "max_abs_sum_median": 1 / 3, "max_abs_sum_worst": 2 / 3,
                      "mean_abs_sum": 1 / 3, "correlation_mean": -0.2, "correlation_min": -1.0,
                      "correlation_max": 0.6, "share_within": 0.5}
    for tag in ("least", "negative"):  # both least likely classes have logit -1
        assert {k: check[f"{tag}_{k}"] for k in expected_least} == pytest.approx(expected_least)
    expected_positive = {"n_pairs": 2, "max_abs_sum_median": 0.5, "max_abs_sum_worst": 1.0,
                         "mean_abs_sum": 1 / 3, "correlation_mean": 0.0, "correlation_min": -1.0,
                         "correlation_max": 1.0, "share_within": 0.5}
    assert {k: check[f"positive_{k}"] for k in expected_positive} == pytest.approx(expected_positive)


def test_anti_heatmap_check_recognises_exact_negatives_and_their_absence(rng):
    base = rng.uniform(0, 1, (4, 6, 6))
    logits = np.array([[3.0, -1.0, -2.0], [-1.0, 2.0, -3.0], [-2.0, -1.0, 1.0], [4.0, 1.0, -1.0]])
    exact = logits.T[:, :, None, None] * base[None]  # map of class k = logit_k x a shared map
    check = anti_heatmap_check(exact, logits)
    assert check["least_max_abs_sum_worst"] < 1e-12 and check["least_correlation_mean"] == pytest.approx(-1)
    assert check["negative_share_within"] == 1.0 and check["negative_n_pairs"] == 7
    assert check["positive_n_pairs"] == 1 and check["positive_correlation_mean"] == pytest.approx(1)
    noisy = exact + rng.standard_normal(exact.shape)
    worse = anti_heatmap_check(noisy, logits)
    assert worse["least_max_abs_sum_median"] > 0.1 and worse["least_correlation_mean"] > -0.9
    assert "does not hold" in claim_sentence("x", worse)
    assert "holds exactly" in claim_sentence("x", check)


def test_claim_sentence_reports_the_hand_made_numbers():
    text = claim_sentence("toy", anti_heatmap_check(*hand_made()))
    assert text.startswith("toy: least likely class — max per-pixel |heatmap + anti-heatmap| 0.333 "
                           "(median image; worst 0.667), raw-map correlation -0.2000, 50 % of images "
                           "within 0.05")
    assert "other classes with a negative logit (2 pairs): correlation -0.200 [-1.000, 0.600], 50 %" in text
    assert "classes not chosen with a positive logit (2 pairs): correlation 0.000 [-1.000, 1.000]" in text
    assert text.endswith("The seed's claim does not hold for the least likely class.")


@pytest.mark.parametrize("worst, correlation, verdict", [
    (5e-4, -0.9999, "holds exactly"),
    (0.2, -0.97, "holds only approximately (close, not exact negatives)"),
    (0.2, -0.90, "does not hold"),
])
def test_claim_verdict_follows_the_thresholds(worst, correlation, verdict):
    check = {"tolerance": 0.05, "least_max_abs_sum_median": worst, "least_max_abs_sum_worst": worst,
             "least_correlation_mean": correlation, "least_share_within": 1.0, "negative_n_pairs": 0,
             "positive_n_pairs": 0}
    text = claim_sentence("n", check)
    assert text.endswith(f"The seed's claim {verdict} for the least likely class.")
    assert "negative logit" not in text and "positive logit" not in text  # no pairs, no clause

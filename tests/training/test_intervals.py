"""Wilson intervals on hand-made counts, checked against the score test they invert."""
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from brainage.training.intervals import wilson_interval
from brainage.training.metrics import classification_metrics


def _score_test_bounds(k, n, confidence=0.95):
    """The p at which the score statistic |k/n - p| / sqrt(p(1-p)/n) equals z, found by root
    search on either side of k/n (the interval's definition, not its closed form)."""
    z = norm.ppf(0.5 + confidence / 2)
    p_hat = k / n

    def excess(p):
        return abs(p_hat - p) - z * math.sqrt(p * (1 - p) / n)

    inside = min(max(p_hat, 1e-12), 1 - 1e-12)  # where the statistic is below z
    low = 0.0 if k == 0 else brentq(excess, 1e-12, inside, xtol=1e-14)
    high = 1.0 if k == n else brentq(excess, inside, 1 - 1e-12, xtol=1e-14)
    return low, high


@pytest.mark.parametrize("k, n, expected", [
    (32, 36, (0.74685, 0.95593)),   # the quick run's test accuracy (issue 11)
    (33, 36, (0.78173, 0.97125)),
    (12, 12, (0.75751, 1.0)),       # n / (n + z²): a perfect bin of 12 leaves 24 points of doubt
    (0, 10, (0.0, 0.27753)),        # z² / (n + z²)
    (5, 10, (0.23659, 0.76341)),
    (1, 3, (0.06149, 0.79234)),
])
def test_wilson_interval_on_hand_made_counts(k, n, expected):
    low, high = wilson_interval(k, n)
    assert (low, high) == pytest.approx(expected, abs=5e-6)
    assert (low, high) == pytest.approx(_score_test_bounds(k, n), abs=1e-9)
    assert low <= k / n <= high


def test_wider_for_higher_confidence_and_none_without_trials():
    assert wilson_interval(32, 36, 0.99)[0] < wilson_interval(32, 36)[0]
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="5 successes of 4"):
        wilson_interval(5, 4)


def test_metrics_carry_intervals_of_the_accuracy_and_of_each_bin():
    # 12 per bin: 12, 11 and 9 right; a fourth bin without test volumes.
    y_true = np.repeat([0, 1, 2], 12)
    y_pred = y_true.copy()
    y_pred[[12]] = 0
    y_pred[[24, 25, 26]] = 1
    metrics = classification_metrics(y_true, y_pred, 4)
    assert metrics["test_accuracy"] == pytest.approx(32 / 36)
    assert metrics["test_accuracy_ci95"] == pytest.approx(wilson_interval(32, 36))
    assert metrics["test_per_bin_accuracy_ci95"][:3] == [
        pytest.approx(wilson_interval(12, 12)), pytest.approx(wilson_interval(11, 12)),
        pytest.approx(wilson_interval(9, 12))]
    assert metrics["test_per_bin_accuracy_ci95"][3] is None
    assert metrics["ci_method"] == "wilson 95 %"

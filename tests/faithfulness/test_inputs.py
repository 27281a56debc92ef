"""Which subjects are scored."""
import numpy as np

from brainage.faithfulness.inputs import spread_over_bins


def test_subject_limit_takes_each_age_bin_in_turn():
    rows = np.array([10, 11, 12, 13, 14, 15, 16])
    bins = np.array([0, 0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(spread_over_bins(rows, bins, 4), [10, 11, 14, 15])
    np.testing.assert_array_equal(spread_over_bins(rows, bins, 6), [10, 11, 12, 14, 15, 16])
    np.testing.assert_array_equal(spread_over_bins(rows, bins, None), rows)

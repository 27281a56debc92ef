"""Age bins: assignment, labels, balancing and stratified splits."""
import numpy as np
import pandas as pd
import pytest

from brainage.data.bins import assign_bins, balance_bins, bin_labels, stratified_split
from brainage.errors import DataError


def test_bins_are_half_open_and_out_of_range_is_minus_one():
    bins = assign_bins([10, 39.99, 40, 69.5, 70, 100.9, 101, 9.9, np.nan], [10, 40, 70, 101])
    assert bins.tolist() == [0, 0, 1, 1, 2, 2, -1, -1, -1]


@pytest.mark.parametrize("edges", [[10], [10, 40], [40, 10, 70]])
def test_bad_bin_edges(edges):
    with pytest.raises(DataError, match="bin_edges"):
        assign_bins([20], edges)


def test_downsampling_a_pac2019_like_table_gives_3_x_114(rng):
    bins = rng.permutation(np.repeat([0, 1, 2], [1734, 792, 114]))
    keep, weights = balance_bins(bins, "downsample", seed=1)
    assert len(keep) == 342 and weights is None
    assert len(np.unique(keep)) == 342
    assert np.bincount(bins[keep]).tolist() == [114, 114, 114]


def test_balancing_is_seeded_and_class_weights_sum_to_n():
    bins = np.repeat([0, 1, 2], [50, 20, 5])
    a, _ = balance_bins(bins, "downsample", seed=7)
    b, _ = balance_bins(bins, "downsample", seed=7)
    c, _ = balance_bins(bins, "downsample", seed=8)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    keep, w = balance_bins(bins, "class_weights")
    assert len(keep) == 75
    assert sum(w[k] * n for k, n in zip(range(3), [50, 20, 5])) == pytest.approx(75)
    assert balance_bins(bins, "none")[1] is None
    with pytest.raises(DataError, match="balance"):
        balance_bins(bins, "oversample")


def test_split_is_stratified_disjoint_and_seeded():
    bins = np.repeat([0, 1, 2], [40, 40, 40])
    split = stratified_split(bins, (0.7, 0.15, 0.15), seed=5)
    for k in range(3):
        counts = pd.Series(split[bins == k]).value_counts()
        assert counts["train"] == 28 and counts["val"] == 6 and counts["test"] == 6
    assert (split == stratified_split(bins, (0.7, 0.15, 0.15), seed=5)).all()
    assert (split != stratified_split(bins, (0.7, 0.15, 0.15), seed=6)).any()


def test_split_rejects_a_bin_too_small():
    bins = np.array([0] * 10 + [1] * 10 + [2] * 2)
    with pytest.raises(DataError, match=r"bin 2 \(ages 70-100\) has 2 subject"):
        stratified_split(bins, (0.7, 0.15, 0.15), 0, edges=[10, 40, 70, 101])


def test_bin_labels_name_integer_ages_and_fall_back_to_intervals():
    assert bin_labels([10, 40, 70, 101]) == ["10-39", "40-69", "70-100"]
    assert bin_labels([10, 40.5, 101]) == ["[10, 40.5)", "[40.5, 101)"]


@pytest.mark.parametrize("fractions", [(0.7, 0.3), (0.5, 0.25, 0.2), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1)])
def test_bad_split_fractions(fractions):
    with pytest.raises(DataError, match=r"data\.split=.*three fractions"):
        stratified_split(np.zeros(10, int), fractions)

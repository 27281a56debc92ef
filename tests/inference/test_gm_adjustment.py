"""Relevance that merely tracks GM amount: the GM-adjusted test removes it; a true effect stays."""
import numpy as np

from brainage.inference.designs import TWO_GROUP, Design
from brainage.inference.region_tests import region_inference


def _design(n):
    tested = np.r_[np.zeros(n), np.ones(n)]
    return Design("old_vs_young", TWO_GROUP, np.arange(2 * n), tested, ("young", "old"), "")


def test_gm_driven_effect_is_removed_and_true_effect_kept():
    rng = np.random.default_rng(4)
    design = _design(15)
    old = design.tested
    # Region 0: GM lower in the old, relevance = 3 x GM + noise (purely GM-driven).
    # Region 1: GM lower in the old too, but relevance rises with age beyond what GM explains.
    # Region 2: nothing.
    gm = 0.5 - 0.08 * old[:, None] + 0.04 * rng.standard_normal((30, 3))
    relevance = 3.0 * gm + 0.03 * rng.standard_normal((30, 3))
    relevance[:, 1] += 0.25 * old
    gm[:, 2] = 0.5 + 0.04 * rng.standard_normal(30)
    relevance[:, 2] = 1.0 + 0.03 * rng.standard_normal(30)
    table = region_inference(relevance, ["gm_driven", "true_effect", "null"], [10, 10, 10], design,
                             np.zeros((30, 0)), gm=gm, n_perm=2000, seed=0).set_index("region")
    assert table.loc["gm_driven", "p_fwe"] < 0.01          # raw: GM amount looks like an effect
    assert table.loc["gm_driven", "p_fwe_adj"] > 0.2        # adjusted: gone
    lo, hi = table.loc["gm_driven", ["effect_lo_adj", "effect_hi_adj"]]
    assert lo < 0 < hi
    assert table.loc["gm_driven", "gm_r"] > 0.9
    assert table.loc["true_effect", "p_fwe_adj"] < 0.01     # an effect beyond GM stays
    assert table.loc["true_effect", "effect_adj"] > 0
    assert table.loc["null", ["p_fwe", "p_fwe_adj"]].min() > 0.05


def test_without_gm_the_table_has_no_adjusted_columns():
    rng = np.random.default_rng(5)
    table = region_inference(rng.normal(size=(12, 2)), ["a", "b"], [3, 4], _design(6),
                             np.zeros((12, 0)), gm=None, n_perm=50)
    assert "p_fwe_adj" not in table and "gm_r" not in table

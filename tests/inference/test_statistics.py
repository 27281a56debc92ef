"""The statistics against hand computations and against nilearn's permuted_ols."""
import numpy as np
import pytest
from scipy import stats

from brainage.inference.designs import CONTINUOUS, TWO_GROUP, Design
from brainage.inference.effect_size import hedges_g, partial_r
from brainage.inference.linear_model import fit_residual_model, max_abs_t_null
from brainage.inference.region_tests import fdr, fwe_p, region_inference, region_statistics
from brainage.inference.voxel_tests import fwe_threshold, voxel_inference


def _two_groups(n_a, n_b):
    tested = np.r_[np.zeros(n_a), np.ones(n_b)]
    return Design("b_vs_a", TWO_GROUP, np.arange(n_a + n_b), tested, ("a", "b"), "")


def test_hedges_g_matches_the_textbook_formula(rng):
    a, b = rng.normal(0, 1, 9), rng.normal(0.8, 1.3, 13)
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1))
                     / (len(a) + len(b) - 2))
    j = 1 - 3 / (4 * (len(a) + len(b)) - 9)
    g_hand = j * (b.mean() - a.mean()) / pooled
    se_hand = np.sqrt((len(a) + len(b)) / (len(a) * len(b)) + g_hand ** 2 / (2 * (len(a) + len(b))))
    t = stats.ttest_ind(b, a).statistic
    g, lo, hi = hedges_g(t, len(a), len(b), len(a) + len(b) - 2)
    assert g == pytest.approx(g_hand, rel=1e-10)
    assert (lo, hi) == pytest.approx((g_hand - 1.959964 * se_hand, g_hand + 1.959964 * se_hand),
                                     rel=1e-6)
    # the region tests give the same g from the data (no covariates)
    table = region_statistics(np.r_[a, b][:, None], _two_groups(9, 13), np.zeros((22, 0)),
                              n_perm=10)
    assert table["effect"][0] == pytest.approx(g_hand, rel=1e-10)
    assert table["t"][0] == pytest.approx(t, rel=1e-10)
    assert table["p"][0] == pytest.approx(stats.ttest_ind(b, a).pvalue, rel=1e-8)


def test_partial_r_matches_pearson_without_covariates(rng):
    x, y = rng.normal(size=30), rng.normal(size=30)
    y += 0.5 * x
    r_hand, p_hand = stats.pearsonr(x, y)
    design = Design("x", CONTINUOUS, np.arange(30), x, ("x",), "")
    table = region_statistics(y[:, None], design, np.zeros((30, 0)), n_perm=10)
    assert table["effect"][0] == pytest.approx(r_hand, rel=1e-10)
    assert table["p"][0] == pytest.approx(p_hand, rel=1e-8)
    z, half = np.arctanh(r_hand), 1.959964 / np.sqrt(30 - 3)
    assert (table["effect_lo"][0], table["effect_hi"][0]) == pytest.approx(
        (np.tanh(z - half), np.tanh(z + half)), rel=1e-6)
    r, lo, hi = partial_r(np.array([0.0]), np.array([28.0]))
    assert r[0] == 0 and lo[0] == pytest.approx(-hi[0])


def test_fdr_is_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan, 0.005])
    finite = np.array([0.01, 0.04, 0.03, 0.2, 0.005])
    order = np.argsort(finite)
    m = len(finite)
    ranked = finite[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]  # step-up: monotone from the top
    hand = np.empty(m)
    hand[order] = np.minimum(adjusted, 1)
    out = fdr(p)
    np.testing.assert_allclose(out[[0, 1, 2, 3, 5]], hand)
    assert np.isnan(out[4])
    np.testing.assert_allclose(hand, [0.025, 0.05, 0.05, 0.2, 0.025])  # e.g. 0.03 * 5 / 3


def test_fwe_p_counts_the_null_maxima_at_or_above():
    null = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(fwe_p(np.array([4.5, -3.0, 0.5, np.nan]), null),
                               [1 / 5, 3 / 5, 5 / 5, np.nan])
    # the threshold says exactly which |t| are significant
    big = np.sort(np.random.default_rng(1).gamma(4, size=999))
    cut = fwe_threshold(big, 0.05)
    assert fwe_p(np.array([cut + 1e-9]), big)[0] <= 0.05 < fwe_p(np.array([cut]), big)[0]
    assert fwe_threshold(big[:10], 0.05) == np.inf  # 10 permutations cannot reach p <= 0.05


def test_linear_model_equals_ols_with_covariates_and_freedman_lane(rng):
    n, r = 26, 4
    x = np.r_[np.zeros(13), np.ones(13)]
    covariates = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n)])
    gm = rng.normal(size=(n, r))
    y = rng.normal(size=(n, r)) + 0.7 * gm + 0.4 * x[:, None]
    model = fit_residual_model(y, x, covariates, gm)
    order = rng.permutation(n)
    for k in range(r):
        nuisance = np.column_stack([np.ones(n), covariates, gm[:, k]])
        design = np.column_stack([x, nuisance])

        def ols_t(target):
            beta = np.linalg.lstsq(design, target, rcond=None)[0]
            resid = target - design @ beta
            df = n - design.shape[1]
            return beta[0] / np.sqrt(resid @ resid / df * np.linalg.inv(design.T @ design)[0, 0])

        assert model.t()[k] == pytest.approx(ols_t(y[:, k]), rel=1e-9)
        assert model.df[k] == n - 5
        # Freedman-Lane: permute the nuisance-only residuals, add the fit back, refit
        fit = nuisance @ np.linalg.lstsq(nuisance, y[:, k], rcond=None)[0]
        assert model.t(order[None])[0, k] == pytest.approx(ols_t(fit + (y[:, k] - fit)[order]),
                                                           rel=1e-9)


def test_region_tests_agree_with_permuted_ols(rng):
    from nilearn.mass_univariate import permuted_ols

    n, r = 24, 6
    design = _two_groups(12, 12)
    covariates = rng.normal(size=(n, 1))
    y = rng.normal(size=(n, r))
    y[:, 0] += 1.5 * design.tested
    ours = region_statistics(y, design, covariates, n_perm=1000, seed=3)
    theirs = permuted_ols(design.tested[:, None], y, confounding_vars=covariates, n_perm=1000,
                          two_sided_test=True, random_state=3, verbose=0)
    np.testing.assert_allclose(ours["t"], theirs["t"][0], rtol=1e-8)
    np.testing.assert_allclose(ours["p_fwe"], 10 ** -theirs["logp_max_t"][0], atol=0.03)
    voxel = voxel_inference(y, design, covariates, n_perm=1000, seed=3)
    np.testing.assert_allclose(voxel.t, ours["t"], rtol=1e-8)
    assert voxel.df == n - 3
    assert (voxel.logp_fwe > -np.log10(0.05)).tolist() == (np.abs(voxel.t) > voxel.t_threshold).tolist()


def test_max_null_is_reproducible_and_seed_dependent(rng):
    model = fit_residual_model(rng.normal(size=(20, 3)), np.r_[np.zeros(10), np.ones(10)],
                               np.zeros((20, 0)))
    a = max_abs_t_null(model, 50, np.random.default_rng(7))
    b = max_abs_t_null(model, 50, np.random.default_rng(7))
    c = max_abs_t_null(model, 50, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and (a >= 0).all()


def test_region_table_is_sorted_and_complete(rng):
    design = _two_groups(10, 10)
    y = rng.normal(size=(20, 5))
    y[:, 3] += 2 * design.tested
    table = region_inference(y, list("ABCDE"), [5, 6, 7, 8, 9], design, np.zeros((20, 0)),
                             gm=rng.normal(size=(20, 5)), n_perm=200)
    assert table["region"][0] == "D" and table["n_voxels"][0] == 8
    assert table["p_fwe"].is_monotonic_increasing
    for column in ("effect", "effect_lo", "effect_hi", "t", "p", "p_fdr", "p_fwe", "effect_adj",
                   "effect_lo_adj", "effect_hi_adj", "t_adj", "p_adj", "p_fdr_adj", "p_fwe_adj",
                   "mean_a", "mean_b", "gm_r"):
        assert table[column].notna().all(), column
    assert (table["effect_lo"] < table["effect"]).all() and (table["effect"] < table["effect_hi"]).all()

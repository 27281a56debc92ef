"""The reliability of regional relevance across ensemble members: ICC, region table, summary."""
import math

import numpy as np
import pandas as pd
import pytest

from brainage.ensemble.reliability import icc, region_reliability, reliability_summary

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def _mean_squares_by_hand(rows):
    """MSR, MSC, MSE of the two-way ANOVA without replication, written out with loops."""
    n, k = len(rows), len(rows[0])
    grand = sum(sum(row) for row in rows) / (n * k)
    row_means = [sum(row) / k for row in rows]
    col_means = [sum(row[j] for row in rows) / n for j in range(k)]
    ss_rows = k * sum((m - grand) ** 2 for m in row_means)
    ss_cols = n * sum((m - grand) ** 2 for m in col_means)
    ss_error = sum((rows[i][j] - row_means[i] - col_means[j] + grand) ** 2 for i in range(n) for j in range(k))
    return ss_rows / (n - 1), ss_cols / (k - 1), ss_error / ((n - 1) * (k - 1))


def test_the_shrout_fleiss_example_gives_the_published_iccs():
    assert icc(SHROUT_FLEISS, "2,1")["icc"] == pytest.approx(0.29, abs=0.005)
    assert icc(SHROUT_FLEISS, "3,1")["icc"] == pytest.approx(0.71, abs=0.005)


def test_the_shrout_fleiss_example_matches_the_anova_formulas():
    n, k = 6, 4
    msr, msc, mse = _mean_squares_by_hand(SHROUT_FLEISS)
    consistency, agreement = icc(SHROUT_FLEISS, "3,1"), icc(SHROUT_FLEISS, "2,1")
    assert consistency["icc"] == pytest.approx((msr - mse) / (msr + (k - 1) * mse), abs=1e-12)
    assert agreement["icc"] == pytest.approx((msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n), abs=1e-12)
    for result in (consistency, agreement):
        assert result["f"] == pytest.approx(msr / mse, rel=1e-12)
        assert (result["df1"], result["df2"]) == (n - 1, (n - 1) * (k - 1))
        assert (result["n_targets"], result["n_raters"]) == (n, k)
        low, high = result["ci95"]
        assert -1 <= low <= result["icc"] <= high <= 1
        assert 0 < result["p"] < 0.001


def test_the_shrout_fleiss_example_gives_the_reference_intervals():
    """R's psych::ICC on this data prints ICC2 0.29 [0.019, 0.76], ICC3 0.71 [0.342, 0.95],
    F = 11.0 on 5 and 15 df, p = 0.00013 (the same formulas as pingouin's intraclass_corr)."""
    agreement, consistency = icc(SHROUT_FLEISS, "2,1"), icc(SHROUT_FLEISS, "3,1")
    assert agreement["ci95"] == pytest.approx((0.019, 0.76), abs=0.01)
    assert consistency["ci95"] == pytest.approx((0.342, 0.95), abs=0.01)
    assert consistency["f"] == pytest.approx(11.03, abs=0.01)
    assert consistency["p"] == pytest.approx(0.000135, abs=1e-6)


def test_a_dataframe_gives_the_same_result_as_a_list():
    frame = pd.DataFrame(SHROUT_FLEISS, columns=["a", "b", "c", "d"])
    assert icc(frame, "2,1") == icc(SHROUT_FLEISS, "2,1")


@pytest.mark.parametrize("kind", ["3,1", "2,1"])
def test_perfect_agreement_gives_one(kind):
    truth = [1.0, 3.0, 2.0, 5.0, 4.0]
    result = icc([[t, t, t] for t in truth], kind)
    assert result["icc"] == pytest.approx(1.0)
    assert result["ci95"] == pytest.approx((1.0, 1.0))


def test_a_constant_offset_per_rater_is_consistent_but_not_in_agreement():
    truth, offsets = [1.0, 3.0, 2.0, 5.0, 4.0], [0.0, 2.0, 5.0]
    ratings = [[t + o for o in offsets] for t in truth]
    assert icc(ratings, "3,1")["icc"] == pytest.approx(1.0)
    agreement = icc(ratings, "2,1")
    assert agreement["icc"] < 0.9
    assert agreement["ci95"][0] <= agreement["icc"] <= agreement["ci95"][1]


@pytest.mark.parametrize("kind", ["3,1", "2,1"])
def test_rows_with_a_non_finite_value_are_dropped(kind):
    with_gaps = SHROUT_FLEISS + [[1.0, np.nan, 3.0, 4.0], [2.0, 3.0, np.inf, 1.0]]
    result = icc(with_gaps, kind)
    assert result == icc(SHROUT_FLEISS, kind)
    assert result["n_targets"] == 6


@pytest.mark.parametrize("ratings, kind, message", [
    ([[1.0, 2.0, 3.0]], "3,1", "at least 2 targets"),
    ([[1.0, 2.0], [np.nan, 3.0]], "3,1", "at least 2 targets"),
    ([[1.0], [2.0], [3.0]], "3,1", "at least 2 raters"),
    ([1.0, 2.0, 3.0], "3,1", "2-D"),
    (SHROUT_FLEISS, "1,1", "unknown ICC kind '1,1'"),
    ([[2.0, 2.0], [2.0, 2.0]], "2,1", "do not vary"),
])
def test_bad_inputs_are_refused_with_the_problem_named(ratings, kind, message):
    with pytest.raises(ValueError, match=message):
        icc(ratings, kind)


def _members():
    """3 members × 5 regions; the top 2 are {A, B}, {B, A} and {A, E}."""
    regions = ["A", "B", "C", "D", "E"]
    return {"seed0": pd.Series([5.0, 4.0, 3.0, 2.0, 1.0], index=regions),
            "seed1": pd.Series([4.0, 5.0, 2.0, 1.0, 3.0], index=regions),
            "seed2": pd.Series([6.0, 3.0, 1.0, 0.0, 4.0], index=regions)}


def test_region_table_gives_mean_sd_and_rank_stability():
    table = region_reliability(_members(), top_k=2)
    assert list(table.columns) == ["region", "mean", "sd", "n_members", "top_k_count", "top_k_share", "rank_mean"]
    assert list(table["region"]) == ["A", "B", "E", "C", "D"]
    by_region = table.set_index("region")
    assert by_region["mean"].to_dict() == pytest.approx({"A": 5, "B": 4, "C": 2, "D": 1, "E": 8 / 3})
    assert by_region["sd"].to_dict() == pytest.approx({"A": 1, "B": 1, "C": 1, "D": 1, "E": math.sqrt(7 / 3)})
    assert by_region["n_members"].to_dict() == {"A": 3, "B": 3, "C": 3, "D": 3, "E": 3}
    assert by_region["top_k_count"].to_dict() == {"A": 3, "B": 2, "C": 0, "D": 0, "E": 1}
    assert by_region["top_k_share"].to_dict() == pytest.approx({"A": 1, "B": 2 / 3, "C": 0, "D": 0, "E": 1 / 3})
    assert by_region["rank_mean"].to_dict() == pytest.approx({"A": 4 / 3, "B": 2, "C": 11 / 3, "D": 14 / 3, "E": 10 / 3})


def test_region_table_takes_the_union_of_regions():
    tables = {"fold0": pd.Series({"A": 2.0, "B": 1.0}), "fold1": pd.Series({"A": 3.0, "C": 5.0})}
    by_region = region_reliability(tables, top_k=1).set_index("region")
    assert by_region.loc["C", "n_members"] == 1 and np.isnan(by_region.loc["C", "sd"])
    assert by_region.loc["A", "sd"] == pytest.approx(math.sqrt(0.5))
    assert by_region["top_k_count"].to_dict() == {"A": 1, "B": 0, "C": 1}
    assert by_region.loc["B", "top_k_share"] == 0


def test_summary_flags_a_top_region_in_the_top_k_of_one_member_only():
    tables = _members()
    for label, value in zip(tables, [20.0, 0.0, 0.0]):
        tables[label] = pd.concat([tables[label], pd.Series({"F": value})])
    summary = reliability_summary(tables, top_k=2, kind="3,1")
    assert list(summary["table"]["region"][:2]) == ["F", "A"]
    assert [entry["region"] for entry in summary["unreliable"]] == ["F"]
    reason = summary["unreliable"][0]["reason"]
    assert "in the top 2 of 1 of 3 members" in reason
    assert "exceeds |mean|" in reason
    assert isinstance(summary["table"], pd.DataFrame)
    assert summary["icc_all"] == pytest.approx(icc(pd.DataFrame(tables), "3,1")["icc"])
    assert summary["meets_icc"] is (summary["icc_top_k"] >= 0.8)


def test_summary_of_agreeing_members_is_reliable():
    summary = reliability_summary(_members(), top_k=2, min_top_k_share=0.6)
    assert summary["unreliable"] == []
    assert summary["icc_top_k_detail"]["n_targets"] == 2
    assert summary["kind"] == "3,1" and summary["n_members"] == 3


def test_summary_gives_nan_where_the_icc_is_undefined():
    one_region = reliability_summary(_members(), top_k=1)
    assert math.isnan(one_region["icc_top_k"]) and one_region["icc_top_k_detail"] is None
    assert one_region["meets_icc"] is False
    one_member = reliability_summary({"seed0": _members()["seed0"]}, top_k=2)
    assert math.isnan(one_member["icc_all"]) and math.isnan(one_member["icc_top_k"])
    with pytest.raises(ValueError, match="unknown ICC kind"):
        reliability_summary(_members(), kind="1")

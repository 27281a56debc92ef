"""The scorecard's columns from the summary tables, and its checks against the goals."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from brainage.faithfulness.checks import apply_checks, row_verdict
from brainage.faithfulness.scorecard import build_scorecard

GOALS = SimpleNamespace(randomisation_step="dense1", max_rand_spearman=0.5,
                        max_class_map_correlation=0.3, aopc_within_se=1.0, min_loc_auc=0.75,
                        max_control_ratio=1.0, max_conservation_error=1e-5)
COLUMNS = ["method", "target", "explainer", "aopc", "aopc_se", "aopc_n", "rand_spearman_dense1",
           "rand_spearman_dense1_se", "rand_n", "rand_spearman_dense1_signed",
           "rand_spearman_dense1_signed_se", "rand_ssim_dense1", "rand_spearman_all", "rand_spearman_all_se",
           "class_map_correlation", "class_map_correlation_se", "class_map_correlation_signed",
           "class_map_n", "class_map_undefined", "loc_auc", "loc_auc_se", "loc_mass_ratio",
           "loc_mass_ratio_se", "control_ratio", "control_ratio_se", "loc_n",
           "conservation_error", "conservation_error_median", "conservation_n"]


def _results():
    pairs = [("dtd", "predicted"), ("gradient", "predicted"), ("random", "predicted")]
    frame = pd.DataFrame(pairs, columns=["method", "target"])
    rand = pd.concat([frame[:2].assign(step=s, layer=layer, spearman_abs=v, spearman_abs_se=0.01,
                                       n=4)
                      for s, layer, v in ((1, "logits", 0.99), (2, "dense1", 0.98),
                                          (3, "block1", 0.9))], ignore_index=True)
    rand.loc[rand["method"] == "gradient", "spearman_abs"] -= 0.6
    loc = pd.concat([frame.assign(bin="all", auc=[0.8, 0.6, 0.5], auc_se=0.01,
                                  mass_ratio=[1.5, 1.2, 1.0], mass_ratio_se=0.1,
                                  control_ratio=[0.9, 1.4, 1.0], control_ratio_se=0.1, n=12),
                     frame.assign(bin="0", auc=0.1, auc_se=0.0, mass_ratio=9.0,
                                  mass_ratio_se=0.0, control_ratio=9.0, control_ratio_se=0.0,
                                  n=4)], ignore_index=True)
    return {
        "aopc": frame.assign(aopc=[0.75, 0.9, 0.02], se=[0.2, 0.2, 0.01], n=12),
        "randomisation": rand, "localisation": loc,
        "class_maps": frame[:2].assign(abs_pearson_r=[0.95, 0.2], abs_pearson_r_se=0.01,
                                       pearson_r=[-0.95, 0.1], n=4, undefined=0),
        "conservation": frame.assign(max=[2e-7, np.nan, np.nan], median=[1e-7, np.nan, np.nan],
                                     n=[12, 0, 0]),
    }


def test_scorecard_columns_come_from_the_summaries():
    pairs = [("dtd", "predicted"), ("gradient", "predicted"), ("random", "predicted")]
    card = build_scorecard(pairs, _results(), {"dtd": {"name": "dtd"}, "gradient": {}}, "dense1")
    assert list(card.columns) == COLUMNS
    dtd, grad, floor = (card.iloc[i] for i in range(3))
    assert (dtd["aopc"], dtd["aopc_se"], dtd["aopc_n"]) == (0.75, 0.2, 12)
    assert dtd["rand_spearman_dense1"] == 0.98 and dtd["rand_spearman_all"] == 0.9
    assert grad["rand_spearman_dense1"] == pytest.approx(0.38)
    assert (dtd["loc_auc"], dtd["control_ratio"]) == (0.8, 0.9)  # the "all" bin, not bin 0
    assert dtd["class_map_correlation"] == 0.95 and dtd["class_map_correlation_signed"] == -0.95
    assert dtd["conservation_error"] == 2e-7 and np.isnan(grad["conservation_error"])
    assert np.isnan(floor["rand_spearman_dense1"]) and np.isnan(floor["class_map_correlation"])
    assert grad["explainer"] == "gradient" and floor["explainer"] == "random"


def test_scorecard_without_the_optional_checks_has_nan_columns():
    results = {k: v for k, v in _results().items() if k in ("aopc", "conservation")}
    card = build_scorecard([("dtd", "true")], results, {}, "block2")
    assert "rand_spearman_block2" in card and card["loc_auc"].isna().all()
    assert len(card) == 1 and card["aopc"].isna().all()  # no ("dtd", "true") row in the tables


def test_checks_mark_pass_fail_and_not_measured():
    pairs = [("dtd", "predicted"), ("gradient", "predicted"), ("random", "predicted")]
    card = apply_checks(build_scorecard(pairs, _results(), {}, "dense1"), GOALS)
    dtd, grad, floor = (card.iloc[i] for i in range(3))
    assert [dtd[f"pass_{c}"] for c in ("randomisation", "class_maps", "aopc", "localisation",
                                       "conservation")] == [False, False, True, True, True]
    # gradient: Spearman 0.38, |r| 0.2, best AOPC, AUC 0.6 with control 1.4, no identity.
    assert [grad[f"pass_{c}"] for c in ("randomisation", "class_maps", "aopc", "localisation",
                                        "conservation")] == [True, True, True, False, False]
    assert (dtd["goals_met"], grad["goals_met"]) == (3, 3)
    assert dtd["verdict"] == "fails: randomisation, class_maps"
    assert floor["verdict"] == "floor" and pd.isna(floor["pass_aopc"])
    # AOPC within one SE of the best (0.9): 0.75 + 0.2 reaches it, 0.75 + 0 SE does not.
    strict = apply_checks(build_scorecard(pairs, _results(), {}, "dense1"),
                          SimpleNamespace(**{**vars(GOALS), "aopc_within_se": 0.0}))
    assert not strict.iloc[0]["pass_aopc"] and strict.iloc[1]["pass_aopc"]


def test_a_missing_measurement_is_not_measured_and_not_met():
    results = {k: v for k, v in _results().items() if k != "localisation"}
    card = apply_checks(build_scorecard([("dtd", "predicted")], results, {}, "dense1"), GOALS)
    row = card.iloc[0]
    assert pd.isna(row["pass_localisation"]) and row["goals_measured"] == 4
    assert row["verdict"] == "fails: randomisation, class_maps; not measured: localisation"
    assert row_verdict(dict.fromkeys(("randomisation", "aopc"), True)) == "pass"


def test_a_void_check_keeps_its_numbers_but_neither_passes_nor_fails():
    pairs = [("dtd", "predicted"), ("gradient", "predicted"), ("random", "predicted")]
    card = apply_checks(build_scorecard(pairs, _results(), {}, "dense1"), GOALS,
                        void=("localisation",))
    dtd, grad = card.iloc[0], card.iloc[1]
    assert dtd["loc_auc"] == 0.8  # the number stands
    assert pd.isna(dtd["pass_localisation"]) and pd.isna(grad["pass_localisation"])
    assert dtd["goals_met"] == 2 and dtd["goals_measured"] == 4  # 3 met without the void
    assert dtd["verdict"] == "fails: randomisation, class_maps; void: localisation"
    assert grad["verdict"] == "fails: conservation; void: localisation"
    with pytest.raises(ValueError, match="not checks"):
        apply_checks(build_scorecard(pairs, _results(), {}, "dense1"), GOALS, void=("auc",))


def test_a_map_that_only_flips_its_sign_keeps_its_signed_pattern():
    """DTD's signed map follows the sign of the randomised logit: Spearman +1 for one subject and
    −1 for the next, a mean of 0 that would read as "the map changed". The scorecard's signed
    column is the mean |ρ| per subject (1: the pattern survived), the raw mean stays in the table."""
    from brainage.faithfulness.tables import randomisation_summary

    rows = pd.DataFrame({"method": "dtd", "target": "predicted", "subject_id": ["a", "b", "c", "d"],
                         "step": 2, "layer": "dense1", "n_layers": 2,
                         "spearman_abs": 0.999, "ssim_abs": 0.99,
                         "spearman_signed": [0.999, -0.999, 0.998, -0.998], "ssim_signed": 0.5})
    table = randomisation_summary(rows)
    assert table["spearman_signed"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert table["spearman_signed_magnitude"].iloc[0] == pytest.approx(0.9985)
    card = build_scorecard([("dtd", "predicted")], {"randomisation": table}, {}, "dense1")
    assert card["rand_spearman_dense1_signed"].iloc[0] == pytest.approx(0.9985)
    assert card["rand_ssim_dense1"].iloc[0] == pytest.approx(0.99)

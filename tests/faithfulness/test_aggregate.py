"""Several models' scorecards as mean ± SD per pair."""
import numpy as np
import pandas as pd
import pytest

from brainage.faithfulness.aggregate import summarise_scorecards


def test_mean_sd_and_pass_counts_over_models():
    def model(aopc, auc, passes):
        return pd.DataFrame({"method": ["dtd", "gradcam"], "target": ["predicted", "predicted"],
                             "explainer": ["dtd", "gradcam"], "aopc": aopc, "aopc_se": [0.1, 0.1],
                             "loc_auc": auc, "goals_met": [1, 2], "verdict": ["x", "y"],
                             "pass_aopc": pd.array(passes, dtype="boolean")})

    cards = {"0_a": model([0.4, 0.1], [0.6, np.nan], [True, False]),
             "1_b": model([0.6, 0.3], [0.8, np.nan], [True, pd.NA]),
             "2_c": model([0.5, 0.2], [0.7, 0.5], [False, False])}
    summary = summarise_scorecards(cards)
    assert list(summary["method"]) == ["dtd", "gradcam"]
    dtd, cam = summary.iloc[0], summary.iloc[1]
    assert dtd["n_models"] == 3 and dtd["aopc"] == pytest.approx(0.5)
    assert dtd["aopc_sd"] == pytest.approx(0.1)
    assert dtd["aopc_se"] == pytest.approx(0.1 / np.sqrt(3))  # over models, not subjects
    assert (cam["loc_auc"], cam["loc_auc_models"]) == (0.5, 1) and np.isnan(cam["loc_auc_sd"])
    assert (dtd["pass_aopc_models"], cam["pass_aopc_models"]) == (2, 0)
    assert "goals_met_sd" not in summary and "verdict" not in summary
    with pytest.raises(ValueError, match="no scorecards"):
        summarise_scorecards({})

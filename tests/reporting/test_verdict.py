"""verdict.md's summary names the ground truth the maps were scored against."""
import pandas as pd

from brainage.reporting.verdict import summary_section


def _results() -> dict:
    return {"localisation": pd.DataFrame({
        "method": ["dtd", "gradient_x_input", "random"], "target": ["predicted"] * 3,
        "bin": ["all"] * 3, "auc": [0.91, 0.62, 0.5], "mass_ratio": [4.2, 1.3, 1.0]})}


def test_the_summary_says_planted_signal_for_a_planted_mask_and_ageing_otherwise():
    planted = summary_section({"localisation": {"mask": "planted"}}, _results(), "random")
    ageing = summary_section({"localisation": {"mask": "effect"}}, _results(), "random")
    assert "- Best localisation of the planted signal: **dtd** (AUC 0.910, mass ratio 4.20)." in planted
    assert "- Best localisation of the ageing ground truth: **dtd** (AUC 0.910, mass ratio 4.20)." in ageing

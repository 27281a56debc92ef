"""Figures of an age regressor: predicted vs chronological age (identity line), gap before and after
correction."""
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brainage.reporting.age_figures import age_gap_figure, predicted_age_figure


def _table():
    ages = np.array([20.0, 35.0, 50.0, 65.0, 80.0])
    predicted = 0.6 * ages + 20
    return pd.DataFrame({"age": ages, "predicted_age": predicted, "gap": predicted - ages,
                         "gap_corrected": np.zeros(5), "predicted_age_corrected": ages})


def test_predicted_age_figure_draws_the_identity_line(tmp_path):
    fig = predicted_age_figure(_table(), {"mae": 4.0, "pearson_r": 0.9})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    identity = [line for line in ax.get_lines() if line.get_label() == "identity"]
    assert len(identity) == 1
    xs, ys = identity[0].get_data()
    np.testing.assert_allclose(xs, ys)
    assert "MAE 4.00 y" in ax.get_title()
    fig.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0


def test_gap_figure_shows_before_and_after_with_their_slopes():
    fig = age_gap_figure(_table(), {"test_corr_with_age": {"gap": -1.0, "gap_corrected": None}})
    before, after = fig.axes[:2]
    assert "before" in before.get_title() and "r(gap, age) = -1.000" in before.get_title()
    assert "after" in after.get_title()
    fits = [line.get_label() for line in before.get_lines()]
    assert any(label.startswith("fit, slope -0.40") for label in fits)

"""Figures of an age regressor: predicted against chronological age, the gap before and after
bias correction.

Each function returns a :class:`matplotlib.figure.Figure` (no pyplot state); the caller saves it.
"""
from __future__ import annotations

import numpy as np


def predicted_age_figure(table, metrics: dict | None = None):
    """Predicted against chronological age on the test split, with the identity line.

    Parameters
    ----------
    table : DataFrame
        ``age`` and ``predicted_age`` per subject (a run's ``test_predictions.csv``).
    metrics : dict, optional
        ``mae``, ``pearson_r`` (and their ``_ci95``) for the title.
    """
    from matplotlib.figure import Figure

    ages = table["age"].to_numpy(dtype=float)
    predicted = table["predicted_age"].to_numpy(dtype=float)
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    ax.scatter(ages, predicted, s=14, alpha=0.8, label="test subject")
    low = float(min(ages.min(), predicted.min()))
    high = float(max(ages.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", label="identity")
    if "predicted_age_corrected" in table:
        ax.scatter(ages, table["predicted_age_corrected"], s=10, marker="x", alpha=0.6,
                   label="bias-corrected")
    ax.set_xlabel("chronological age (years)")
    ax.set_ylabel("predicted age (years)")
    ax.set_aspect("equal", adjustable="datalim")
    title = f"test set, n={len(ages)}"
    if metrics and metrics.get("mae") is not None:
        title += f"\nMAE {metrics['mae']:.2f} y"
        if metrics.get("pearson_r") is not None:
            title += f", r = {metrics['pearson_r']:.3f}"
    ax.set_title(title)
    ax.legend(loc="upper left")
    return fig


def age_gap_figure(table, age_gap: dict | None = None):
    """The brain-age gap against age before and after the correction fitted on validation.

    Parameters
    ----------
    table : DataFrame
        ``age``, ``gap`` and ``gap_corrected`` per subject.
    age_gap : dict, optional
        ``metrics.json``'s ``age_gap`` (its ``test_corr_with_age`` goes into the titles).
    """
    from matplotlib.figure import Figure

    ages = table["age"].to_numpy(dtype=float)
    correlations = (age_gap or {}).get("test_corr_with_age", {})
    fig = Figure(figsize=(10, 4), layout="constrained")
    for ax, column, what in zip(fig.subplots(1, 2, sharey=True), ["gap", "gap_corrected"],
                                ["before correction", "after correction (fitted on val)"]):
        gap = table[column].to_numpy(dtype=float)
        ax.scatter(ages, gap, s=14, alpha=0.8)
        ax.axhline(0, color="grey", linestyle="--")
        if len(ages) >= 2 and np.ptp(ages) > 0:
            slope, intercept = np.polyfit(ages, gap, 1)
            xs = np.array([ages.min(), ages.max()])
            ax.plot(xs, slope * xs + intercept, color="C3", label=f"fit, slope {slope:.2f}")
            ax.legend(loc="upper right")
        r = correlations.get(column)
        ax.set_title(what + ("" if r is None else f"\nr(gap, age) = {r:.3f}"))
        ax.set_xlabel("chronological age (years)")
    fig.axes[0].set_ylabel("brain-age gap (years)")
    return fig

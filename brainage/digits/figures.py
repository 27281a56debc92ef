"""Figures of the digits experiment, as ``matplotlib.figure.Figure`` objects (no pyplot state)."""
from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np

from brainage.digits.antiheatmap import normalise_antiheatmap, normalise_heatmap


def _show(ax, img, cmap, vmin, vmax, title):
    ax.imshow(np.squeeze(img), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def examples_figure(name: str, x, y, logits, maps_all, picks, accuracy: float, note: str):
    """Correct test digits of network ``name``, one per column: the digit, the heat map of the
    chosen class in [0, 1], the anti-heatmap of the least likely class in [−1, 0], and their sum.

    Parameters
    ----------
    x, y : test images ``(n, h, w, 1)`` and labels ``(n,)``
    logits : array (n, n_classes)
    maps_all : array (n_classes, n, h, w, 1)
        Maps of every class.
    picks : sequence of int
        The test digits shown.
    accuracy : float
        Test accuracy, in the title.
    note : str
        Where the digits come from.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.9 * len(picks), 8.2))
    axes = fig.subplots(4, len(picks), squeeze=False)
    for col, i in enumerate(picks):
        c, least = int(logits[i].argmax()), int(logits[i].argmin())
        h = normalise_heatmap(maps_all[c, i][None])[0]
        a = normalise_antiheatmap(maps_all[least, i][None])[0]
        _show(axes[0, col], x[i], "gray", 0, 1, f"digit {y[i]}, predicted {c}")
        _show(axes[1, col], h, "hot", 0, 1, f"heatmap ({c}) in [0, 1]")
        _show(axes[2, col], a, "Blues_r", -1, 0, f"anti-heatmap ({least}) in [-1, 0]")
        _show(axes[3, col], h + a, "RdBu_r", -1, 1, f"sum, max |.| {np.abs(h + a).max():.2f}")
    fig.suptitle(f"{name} network, DTD (test accuracy {100 * accuracy:.1f} %); anti-heatmap = least "
                 "likely class\n" + textwrap.fill(note, 110), fontsize=9)
    fig.tight_layout()
    return fig


def misclassified_figure(cases: Sequence[tuple], note: str):
    """One row per network: a misclassified test digit with the heat maps of the predicted and the
    true class. ``cases`` holds ``(network name, MisclassifiedDigit or None)``; None (every test
    digit right) gives an empty row that says so."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 2.3 * len(cases)))
    axes = fig.subplots(len(cases), 3, squeeze=False)
    for row, (name, case) in enumerate(cases):
        if case is None:
            for ax in axes[row]:
                ax.axis("off")
            axes[row, 0].set_title(f"{name}: no misclassified test digit", fontsize=8)
            continue
        _show(axes[row, 0], case.image, "gray", 0, 1,
              f"{name}: a {case.true} classified as {case.predicted}")
        _show(axes[row, 1], normalise_heatmap(case.map_predicted[None])[0], "hot", 0, 1,
              f"heatmap for {case.predicted}")
        _show(axes[row, 2], normalise_heatmap(case.map_true[None])[0], "hot", 0, 1,
              f"heatmap for {case.true}")
    fig.suptitle("Misclassified digits, DTD\n" + textwrap.fill(note, 70), fontsize=8)
    fig.tight_layout()
    return fig

"""Figures of a training run: learning curves and the test confusion matrix.

Each function returns a :class:`matplotlib.figure.Figure` (no pyplot state); the caller saves it.
"""
from __future__ import annotations

import numpy as np


def training_curves_figure(history: list, best_epoch: int | None = None, metric: str = "accuracy"):
    """Loss and ``metric`` (accuracy, or a regression's ``mae``) per epoch, training and
    validation, with the best epoch marked.

    Parameters
    ----------
    history : list of dict
        One row per epoch with ``epoch``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``.
    best_epoch : int, optional
        Drawn as a dashed vertical line.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4), layout="constrained")
    epochs = [row["epoch"] for row in history]
    for ax, key in zip(fig.subplots(1, 2), ["loss", metric]):
        ax.plot(epochs, [row[key] for row in history], "o-", label="train")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], "o-", label="validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.legend()
    return fig


def confusion_matrix_figure(matrix, labels, accuracy_ci=None, per_bin_ci=None):
    """Counts per (true bin, predicted bin), shaded by the share of the true bin.

    Parameters
    ----------
    matrix : array-like (n_bins, n_bins)
        ``matrix[i][j]`` counts test volumes of true bin ``i`` predicted as bin ``j``.
    labels : list of str
        Bin labels, e.g. ``["10-39", "40-69", "70-100"]``.
    accuracy_ci : [low, high], optional
        95 % interval of the accuracy, shown in the title.
    per_bin_ci : list of [low, high] or None, optional
        95 % interval of each bin's accuracy, shown beside its row.
    """
    from matplotlib.figure import Figure

    cm = np.asarray(matrix, dtype=float)
    support = cm.sum(axis=1)
    share = cm / np.maximum(support[:, None], 1)
    fig = Figure(figsize=(6.2 if per_bin_ci else 4.5, 4.2), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted age bin")
    ax.set_ylabel("true age bin")
    title = f"test set: {np.trace(cm):.0f} of {cm.sum():.0f} correct"
    if accuracy_ci:
        title += (f"\naccuracy {100 * np.trace(cm) / max(cm.sum(), 1):.1f} % "
                  f"(95 % CI {100 * accuracy_ci[0]:.1f}-{100 * accuracy_ci[1]:.1f})")
    ax.set_title(title)
    for i, interval in enumerate(per_bin_ci or []):
        if interval:
            ax.text(len(labels) - 0.4, i, f"{100 * cm[i, i] / support[i]:.0f} %\n"
                    f"[{100 * interval[0]:.0f}, {100 * interval[1]:.0f}]",
                    ha="left", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="share of true bin", pad=0.2 if per_bin_ci else 0.05)
    return fig

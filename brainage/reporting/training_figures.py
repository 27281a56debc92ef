"""Figures of a training run: learning curves and the test confusion matrix.

Each function returns a :class:`matplotlib.figure.Figure` (no pyplot state); the caller saves it.
"""
from __future__ import annotations

import numpy as np


def training_curves_figure(history: list, best_epoch: int | None = None):
    """Loss and accuracy per epoch, training and validation, with the best epoch marked.

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
    for ax, key in zip(fig.subplots(1, 2), ["loss", "accuracy"]):
        ax.plot(epochs, [row[key] for row in history], "o-", label="train")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], "o-", label="validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.legend()
    return fig


def confusion_matrix_figure(matrix, labels):
    """Counts per (true bin, predicted bin), shaded by the share of the true bin.

    Parameters
    ----------
    matrix : array-like (n_bins, n_bins)
        ``matrix[i][j]`` counts test volumes of true bin ``i`` predicted as bin ``j``.
    labels : list of str
        Bin labels, e.g. ``["10-39", "40-69", "70-100"]``.
    """
    from matplotlib.figure import Figure

    cm = np.asarray(matrix, dtype=float)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(4.5, 4), layout="constrained")
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
    ax.set_title(f"test set: {np.trace(cm):.0f} of {cm.sum():.0f} correct")
    fig.colorbar(image, ax=ax, label="share of true bin")
    return fig

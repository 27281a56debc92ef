"""Accuracy of predicted bins: per bin, balanced, the confusion matrix, with Wilson intervals.

Shared by the network's metrics and the baselines; it imports no settings, so the baselines (read
by the training settings) can use it.
"""
from __future__ import annotations

import numpy as np

from brainage.training.intervals import CONFIDENCE, METHOD, wilson_interval


def classification_metrics(y_true, y_pred, n_classes: int) -> dict:
    """Accuracy, per-class accuracy (recall), balanced accuracy, the confusion matrix, and 95 %
    Wilson intervals of the accuracy and of each bin's accuracy.

    ``confusion_matrix[i][j]`` counts volumes of true bin ``i`` predicted as bin ``j``. A bin
    without test volumes has accuracy (and interval) None and is left out of the balanced accuracy.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    support = cm.sum(axis=1)
    per_bin = [float(cm[k, k] / support[k]) if support[k] else None for k in range(n_classes)]
    present = [a for a in per_bin if a is not None]
    return {
        "test_accuracy": float((y_true == y_pred).mean()) if len(y_true) else None,
        "test_balanced_accuracy": float(sum(present) / len(present)) if present else None,
        "test_per_bin_accuracy": per_bin,
        "test_accuracy_ci95": wilson_interval(int(np.trace(cm)), int(len(y_true))),
        "test_per_bin_accuracy_ci95": [wilson_interval(int(cm[k, k]), int(support[k]))
                                       for k in range(n_classes)],
        "ci_method": f"{METHOD} {100 * CONFIDENCE:g} %",
        "test_n": int(len(y_true)),
        "confusion_matrix": cm.tolist(),
    }

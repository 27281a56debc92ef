"""Test metrics of a training run (``metrics.json``) and their summary next to the seed's figures."""
from __future__ import annotations

import numpy as np

from brainage.data.cohort import bin_labels
from brainage.training.checkpoint import RunState
from brainage.training.settings import TrainSettings

# Seed 000, section 3.1: test accuracy per bin (10-39, 40-69, 70-100) and overall after 34 epochs.
SEED_BIN_EDGES = [10, 40, 70, 101]
SEED_PER_BIN_ACCURACY = [0.8158, 0.3509, 1.0]
SEED_ACCURACY = 0.7222


def classification_metrics(y_true, y_pred, n_classes: int) -> dict:
    """Accuracy, per-class accuracy (recall), balanced accuracy and the confusion matrix.

    ``confusion_matrix[i][j]`` counts volumes of true bin ``i`` predicted as bin ``j``. A bin
    without test volumes has accuracy None and is left out of the balanced accuracy.
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
        "test_n": int(len(y_true)),
        "confusion_matrix": cm.tolist(),
    }


def run_metrics(settings: TrainSettings, data, state: RunState, logits, timings: dict) -> dict:
    """The contents of ``metrics.json``: test metrics of ``logits``, the split, the run's course.

    Parameters
    ----------
    logits : array (n_test, n_classes)
        The kept model's outputs on the test split, in split order.
    timings : dict
        From :func:`run_timings`.
    """
    metrics = classification_metrics(data.labels("test"), logits.argmax(axis=-1), data.n_classes)
    metrics.update(
        bin_edges=[float(e) for e in data.bin_edges],
        bin_labels=bin_labels(data.bin_edges),
        n_per_bin_split=counts_per_bin(data),
        class_weights={str(int(k)): float(v) for k, v in data.class_weights.items()}
        if data.class_weights else None,
        epochs_run=state.epochs_done,
        best_epoch=state.best_epoch,
        stopped_early=state.stopped_early,
        monitor=settings.monitor,
        best_monitor_value=state.best_value,
        seed=settings.seed,
        resumed=settings.resume is not None,
        timings=timings,
    )
    return metrics


def run_timings(placement: dict, state: RunState, n_train: int, n_test: int,
                predict_seconds: float) -> dict:
    """``metrics.json``'s ``timings``: where the run ran (``placement``: backend, devices,
    distribution, replicas, dtype policy), then seconds and volumes per second."""
    epoch_seconds = [row["seconds"] for row in state.history]
    steps = state.train_step_seconds
    steady = steps[1:] or steps
    return {
        **placement,
        "train_seconds": float(sum(epoch_seconds)),
        "seconds_per_epoch": float(sum(epoch_seconds) / max(len(epoch_seconds), 1)),
        # Training steps only (validation excluded); the first epoch includes compilation.
        "train_volumes_per_s": _rate(n_train * len(steps), sum(steps)),
        "train_volumes_per_s_after_first_epoch": _rate(n_train * len(steady), sum(steady)),
        "predict_volumes_per_s": _rate(n_test, predict_seconds),
    }


def counts_per_bin(data) -> dict:
    """``{split: [volumes of bin 0, bin 1, ...]}`` for train, val and test."""
    counts = {}
    for split in ("train", "val", "test"):
        labels = data.labels(split)
        counts[split] = [int((labels == k).sum()) for k in range(data.n_classes)]
    return counts


def format_summary(metrics: dict) -> str:
    """A small table of test accuracy per bin next to the seed's figures (seed 000, section 3.1)."""
    labels = metrics["bin_labels"]
    seed_comparable = [float(e) for e in metrics["bin_edges"]] == [float(e) for e in SEED_BIN_EDGES]
    counts = metrics["confusion_matrix"]

    def pct(value):
        return "     -" if value is None else f"{100 * value:6.2f}"

    lines = [f"{'age bin':<14}{'n test':>7}{'accuracy %':>12}{'seed 000 %':>12}"]
    for k, label in enumerate(labels):
        seed = SEED_PER_BIN_ACCURACY[k] if seed_comparable else None
        lines.append(f"{label:<14}{sum(counts[k]):>7}{pct(metrics['test_per_bin_accuracy'][k]):>12}"
                     f"{pct(seed):>12}")
    lines.append(f"{'overall':<14}{metrics['test_n']:>7}{pct(metrics['test_accuracy']):>12}"
                 f"{pct(SEED_ACCURACY if seed_comparable else None):>12}")
    lines.append(f"{'balanced':<14}{'':>7}{pct(metrics['test_balanced_accuracy']):>12}"
                 f"{pct(None):>12}")
    return "\n".join(lines)


def _rate(count: float, seconds: float) -> float | None:
    return float(count / seconds) if seconds > 0 else None

"""The files a training run leaves besides its checkpoint: history, predictions, figures, metrics.

``metrics.json`` is written last by :func:`write_run_outputs`: its presence marks a finished run.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from brainage.reporting.age_figures import age_gap_figure, predicted_age_figure
from brainage.reporting.training_figures import confusion_matrix_figure, training_curves_figure

HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
# A regression run logs the MAE (years) where a classifier logs the accuracy.
REGRESSION_HISTORY_COLUMNS = ["epoch", "loss", "mae", "val_loss", "val_mae", "lr", "seconds"]


def write_history(path: Path, history: list) -> None:
    """``history.csv``: one row per epoch (:data:`HISTORY_COLUMNS`, or
    :data:`REGRESSION_HISTORY_COLUMNS` when the rows hold ``mae``)."""
    import pandas as pd

    columns = REGRESSION_HISTORY_COLUMNS if history and "mae" in history[0] else HISTORY_COLUMNS
    pd.DataFrame(history, columns=columns).to_csv(path, index=False)


def write_predictions(path: Path, data, logits) -> None:
    """Per test subject: true and predicted bin and the logits (which subjects to explain)."""
    table = data.split_table().iloc[data.indices("test")].reset_index(drop=True)
    table["predicted_bin"] = logits.argmax(axis=-1)
    table["correct"] = table["predicted_bin"] == table["bin"]
    for k in range(logits.shape[-1]):
        table[f"logit_{k}"] = logits[:, k]
    table.drop(columns="split").to_csv(path, index=False)


def write_run_outputs(run_dir: Path, history: list, best_epoch: int | None, data, logits,
                      metrics: dict) -> None:
    """``history.csv``, ``test_predictions.csv``, the two figures, then ``metrics.json``."""
    write_history(run_dir / "history.csv", history)
    write_predictions(run_dir / "test_predictions.csv", data, logits)
    training_curves_figure(history, best_epoch).savefig(run_dir / "training_curves.png", dpi=100)
    confusion_matrix_figure(metrics["confusion_matrix"], metrics["bin_labels"],
                            metrics["test_accuracy_ci95"],
                            metrics["test_per_bin_accuracy_ci95"]).savefig(
        run_dir / "confusion_matrix.png", dpi=100)
    # metrics.json last: its presence marks a finished run.
    (run_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2))


def write_regression_outputs(run_dir: Path, history: list, best_epoch: int | None, table,
                             metrics: dict) -> None:
    """A regression run's ``history.csv``, ``test_predictions.csv`` (the gap table of
    :func:`brainage.data.age_gap.gap_table`), ``training_curves.png``,
    ``predicted_age.png`` and ``age_gap.png``, then ``metrics.json``."""
    write_history(run_dir / "history.csv", history)
    table.to_csv(run_dir / "test_predictions.csv", index=False)
    training_curves_figure(history, best_epoch, metric="mae").savefig(
        run_dir / "training_curves.png", dpi=100)
    predicted_age_figure(table, metrics).savefig(run_dir / "predicted_age.png", dpi=100)
    age_gap_figure(table, metrics["age_gap"]).savefig(run_dir / "age_gap.png", dpi=100)
    (run_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2))


def json_safe(value):
    """NaN and infinities become null (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value

"""An ensemble's own test score, from its members' ``test_predictions.csv``, as ``metrics.json`` keys.

The members' test predictions are combined as the ensemble predicts (mean softmax probabilities,
its bin their arg-max; or the mean predicted age, :mod:`brainage.ensemble.combine`), subject by
subject. That needs every member's table and one shared test split: where members were tested on
different subjects, a member's test subject is another's training subject, and the ensemble has
no honest test score. The keys are a single run's (``test_accuracy``, ``test_balanced_accuracy``,
``test_n``; a regressor's ``mae``, ``r2``, ``test_n``), so a stage reads the ensemble's skill as
it reads one run's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainage.ensemble.combine import AgeSpread, ClassSpread
from brainage.ensemble.members import Ensemble

PREDICTIONS = "test_predictions.csv"


def ensemble_test_metrics(ensemble: Ensemble) -> tuple[dict, str | None]:
    """``(metrics, None)``: the ensemble's test score; or ``({"task": …}, why)`` where it has none."""
    task = {"task": ensemble.task}
    dirs = [m.train.dir for m in ensemble.members]
    missing = [str(d) for d in dirs if not (d / PREDICTIONS).is_file()]
    if missing:
        return task, f"no {PREDICTIONS} in {', '.join(missing)}"
    tables = _tables(dirs)
    if any(set(t.index) != set(tables[0].index) for t in tables[1:]):
        return task, "the members were tested on different subjects (no shared test split)"
    return {**task, **_combined(tables, ensemble.is_regression)}, None


def combined_test_scores(dirs: list, regression: bool) -> dict:
    """The test score of the members in ``dirs`` combined, from their ``test_predictions.csv``
    (which must hold the same subjects): ``test_accuracy``, ``test_balanced_accuracy`` or
    ``mae``, ``r2``; and ``test_n``."""
    return _combined(_tables(dirs), regression)


def _tables(dirs: list) -> list:
    return [pd.read_csv(Path(d) / PREDICTIONS, dtype={"subject_id": str}).set_index("subject_id")
            for d in dirs]


def _combined(tables: list, regression: bool) -> dict:
    """The members' tables, rows matched by subject, scored as the ensemble predicts."""
    order = tables[0].index
    tables = [t.loc[order] for t in tables]
    scores = _regression(tables) if regression else _classification(tables)
    return {**scores, "test_n": len(order)}


def _classification(tables: list) -> dict:
    columns = sorted((c for c in tables[0].columns if c.startswith("logit_")),
                     key=lambda c: int(c.split("_")[1]))
    predicted = ClassSpread.of(np.stack([t[columns].to_numpy(float) for t in tables])).predicted
    bins = tables[0]["bin"].to_numpy(int)
    recalls = [float((predicted[bins == b] == b).mean()) for b in np.unique(bins)]
    return {"test_accuracy": float((predicted == bins).mean()),
            "test_balanced_accuracy": float(np.mean(recalls))}


def _regression(tables: list) -> dict:
    predicted = AgeSpread.of(np.stack([t["predicted_age"].to_numpy(float) for t in tables])).mean
    ages = tables[0]["age"].to_numpy(float)
    spread = float(((ages - ages.mean()) ** 2).sum())
    r2 = 1.0 - float(((ages - predicted) ** 2).sum()) / spread if spread > 0 else None
    return {"mae": float(np.abs(predicted - ages).mean()), "r2": r2}

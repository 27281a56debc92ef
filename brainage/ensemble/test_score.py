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

import numpy as np
import pandas as pd

from brainage.ensemble.combine import AgeSpread, ClassSpread
from brainage.ensemble.members import Ensemble

PREDICTIONS = "test_predictions.csv"


def ensemble_test_metrics(ensemble: Ensemble) -> tuple[dict, str | None]:
    """``(metrics, None)``: the ensemble's test score; or ``({"task": …}, why)`` where it has none."""
    task = {"task": ensemble.task}
    missing = [str(m.train.dir) for m in ensemble.members
               if not (m.train.dir / PREDICTIONS).is_file()]
    if missing:
        return task, f"no {PREDICTIONS} in {', '.join(missing)}"
    tables = [pd.read_csv(m.train.dir / PREDICTIONS, dtype={"subject_id": str})
              .set_index("subject_id") for m in ensemble.members]
    order = tables[0].index
    if any(set(t.index) != set(order) for t in tables[1:]):
        return task, "the members were tested on different subjects (no shared test split)"
    tables = [t.loc[order] for t in tables]
    scores = _regression(tables) if ensemble.is_regression else _classification(tables)
    return {**task, **scores, "test_n": len(order)}, None


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

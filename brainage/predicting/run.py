"""A finished training run applied to a whole cohort: predictions, maps, report (``make predict``).

Steps: resolve the training run; choose the maps' method; read the cohort through the run's data
config with the user's overrides, refusing one the model was not trained for; predict every
subject, writing each map as its batch is explained; ``predictions.csv``, the mean map, figures and
``report.html``. Everything goes into the stage's work folder (:func:`brainage.runs.staged_run`).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from brainage.data.age_gap import StoredCorrection, read_correction
from brainage.data.cohort import report_exclusions
from brainage.data.prepared import SPLITS
from brainage.data.whole_cohort import WholeCohort
from brainage.predicting.cohort import TrainingCohort, read_cohort, training_split_flags
from brainage.predicting.maps import MapWriter, predict_all
from brainage.predicting.methods import ChosenMethod, choose_method, method_analyzer
from brainage.predicting.settings import PredictSettings
from brainage.predicting.table import (
    SPLIT_COLUMN,
    accuracy_summary,
    classification_table,
    regression_table,
)
from brainage.reporting.predict_report import write_report
from brainage.runs.scorecards import faithfulness_status
from brainage.trained import TrainRun, load_model, resolve_train_run

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.csv"


def run_prediction(settings: PredictSettings, work: Path) -> dict:
    """Predict every subject of the cohort into ``work``; returns the summary (``predict.json``)."""
    t0 = time.perf_counter()
    train = resolve_train_run(settings.run)
    # Read before the cohort: a regression run without its correction fails in a second.
    stored = read_correction(train.dir) if train.is_regression else None
    method = (choose_method(settings.method, train.dir, settings.outputs_dir) if settings.maps
              else None)
    training = TrainingCohort(train, settings.run.data, settings.progress)
    cohort, where = read_cohort(train, settings.run.data, training, settings.progress)
    report_exclusions(cohort.exclusions, work)
    model = load_model(train, tuple(cohort.volumes.shape[1:]) + (1,))
    writer = None
    if method is not None:
        log.info("maps: %s, chosen by %s", method.name, method.chosen_by)
        writer = _map_writer(settings, train, method, model, cohort, training, work)
    outputs = predict_all(model, cohort, settings.batch_size, writer, settings.progress)
    if train.is_regression:
        predictions = regression_table(cohort.table, outputs[:, 0], stored.or_nan())
    else:
        predictions = classification_table(cohort.table, outputs, list(train.cfg.data.bin_edges))
    predictions[SPLIT_COLUMN] = training_split_flags(cohort.table, train.split)
    predictions.to_csv(work / PREDICTIONS, index=False)
    mean_map = writer.write_mean() if writer is not None else None
    summary = _summary(train, where, cohort, predictions, method, writer, stored)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    write_report(work, summary, predictions, mean_map, list(train.cfg.data.bin_edges))
    return summary


def _map_writer(settings: PredictSettings, train: TrainRun, method: ChosenMethod, model,
                cohort: WholeCohort, training: TrainingCohort, work: Path) -> MapWriter:
    """The method's analyzer and the writer of its maps."""
    analyzer = method_analyzer(method, model, training)
    checks, _ = faithfulness_status(train.dir, settings.outputs_dir, [method.name])
    return MapWriter(method.name, analyzer, cohort, work, settings.display, checks[method.name],
                     train.dir.name)


def _summary(train: TrainRun, where: str, cohort: WholeCohort, predictions, method, writer,
             stored: StoredCorrection | None) -> dict:
    """``predict.json``: the run, the cohort's counts, the maps, the accuracy where ages are known."""
    return {
        "train_dir": str(train.dir), "model_path": str(train.model_path), "task": train.task,
        **cohort_summary(where, cohort, predictions),
        "maps": maps_summary(method, writer),
        "accuracy": accuracy_summary(predictions, train.is_regression),
        "age_gap": None if stored is None else stored.summary(),
    }


def cohort_summary(where: str, cohort: WholeCohort, predictions) -> dict:
    """The cohort and its counts: with and without an age, excluded, in each training split."""
    ages = cohort.table["age"].to_numpy(dtype=float)
    flags = predictions[SPLIT_COLUMN]
    return {
        "cohort": where, "n_subjects": int(len(cohort.table)),
        "n_with_age": int(np.isfinite(ages).sum()), "n_without_age": int((~np.isfinite(ages)).sum()),
        "n_excluded": int(len(cohort.exclusions)),
        "in_training_split": {s: int((flags == s).sum()) for s in SPLITS},
        "n_held_out": int((flags == "").sum()),
    }


def maps_summary(method: ChosenMethod | None, writer) -> dict | None:
    """The maps' method, who chose it and how many maps were written (None: ``maps=false``)."""
    if method is None:
        return None
    return {"method": method.name, "chosen_by": method.chosen_by, "n_maps": len(writer.paths)}

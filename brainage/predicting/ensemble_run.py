"""An ensemble of finished training runs applied to a whole cohort as one model
(``make predict train_dirs=[A,B,C]``).

Steps, as for one run (:mod:`brainage.predicting.run`): open the members and refuse a set that
cannot form one ensemble (:func:`brainage.ensemble.members.open_ensemble`; a member without
``grid.json`` is compared by its own cohort's grid); choose the maps' method (the first member's
evaluate choice); read the cohort through the first member's data config, checked against its
grid; predict every batch with every member in one pass, writing the mean, SD and agreement maps
as the batch is explained; ``predictions.csv``, the mean map, figures and ``report.html``.
``predict.json`` adds the members, each member's accuracy (or MAE) and the ensemble's beside the
median and best member's.
"""
from __future__ import annotations

import time
from pathlib import Path

from brainage.data.cohort import report_exclusions
from brainage.data.whole_cohort import WholeCohort
from brainage.ensemble.members import Ensemble, open_ensemble
from brainage.predicting.cohort import (
    TrainingCohort,
    read_cohort,
    trained_grid,
    training_split_flags,
)
from brainage.predicting.ensemble_maps import EnsembleMapWriter, predict_members
from brainage.predicting.ensemble_table import (
    against_members,
    combined_flags,
    ensemble_correction,
    ensemble_table,
    member_accuracies,
)
from brainage.predicting.maps import MapWriter
from brainage.predicting.methods import ChosenMethod, choose_method, method_analyzer
from brainage.predicting.run import PREDICTIONS, cohort_summary, maps_summary
from brainage.predicting.settings import PredictSettings
from brainage.predicting.table import accuracy_summary
from brainage.reporting.predict_report import write_report
from brainage.runs.scorecards import faithfulness_status
from brainage.trained import TrainRun, load_model


class _TrainingCohorts:
    """Each member's own cohort, rebuilt at most once and only where needed (no ``grid.json``,
    a named reference image)."""

    def __init__(self, settings: PredictSettings):
        self.settings = settings
        self._cohorts = {}

    def of(self, train: TrainRun) -> TrainingCohort:
        if train.dir not in self._cohorts:
            self._cohorts[train.dir] = TrainingCohort(train, self.settings.run.data,
                                                      self.settings.progress)
        return self._cohorts[train.dir]


def run_ensemble_prediction(settings: PredictSettings, work: Path) -> dict:
    """Predict every subject of the cohort with the ensemble of ``settings.train_dirs`` into
    ``work``; returns the summary (``predict.json``)."""
    t0 = time.perf_counter()
    trainings = _TrainingCohorts(settings)
    ensemble = open_ensemble(settings.train_dirs, settings.outputs_dir,
                             lambda train: trained_grid(train, trainings.of(train)))
    first = ensemble.first
    method = (choose_method(settings.method, first.dir, settings.outputs_dir) if settings.maps
              else None)
    cohort, where = read_cohort(first, settings.run.data, trainings.of(first), settings.progress)
    report_exclusions(cohort.exclusions, work)
    shape = tuple(cohort.volumes.shape[1:]) + (1,)
    models = [load_model(m.train, shape) for m in ensemble.members]
    writer = (_map_writer(settings, ensemble, method, models, cohort, trainings, work)
              if method is not None else None)
    outputs = predict_members(models, cohort, settings.batch_size, writer, settings.progress)
    member_flags = [training_split_flags(cohort.table, m.train.split) for m in ensemble.members]
    predictions = ensemble_table(cohort.table, outputs, ensemble, combined_flags(member_flags))
    predictions.to_csv(work / PREDICTIONS, index=False)
    mean_map = writer.write_mean() if writer is not None else None
    members = member_accuracies(cohort.table, outputs, ensemble, member_flags)
    summary = _summary(ensemble, where, cohort, predictions, members, method, writer)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    write_report(work, summary, predictions, mean_map, ensemble.bin_edges)
    return summary


def _map_writer(settings: PredictSettings, ensemble: Ensemble, method: ChosenMethod, models: list,
                cohort: WholeCohort, trainings: _TrainingCohorts, work: Path) -> EnsembleMapWriter:
    """Each member's analyzer of the method (a named reference resolved on that member's own
    training split) and the writer of the ensemble's maps; ``descrip`` carries the first
    member's evaluate verdict of the method."""
    analyzers = [method_analyzer(method, model, trainings.of(member.train))
                 for member, model in zip(ensemble.members, models)]
    checks, _ = faithfulness_status(ensemble.first.dir, settings.outputs_dir, [method.name])
    writer = MapWriter(method.name, None, cohort, work, settings.display, checks[method.name],
                       f"ensemble of {len(models)}")
    return EnsembleMapWriter(analyzers, writer, ensemble.is_regression)


def _summary(ensemble: Ensemble, where: str, cohort: WholeCohort, predictions, members: list,
             method, writer) -> dict:
    """``predict.json`` of an ensemble: one run's keys for the ensemble, and its members."""
    accuracy = accuracy_summary(predictions, ensemble.is_regression)
    return {
        "task": ensemble.task, "n_members": len(ensemble.members), "members": members,
        **cohort_summary(where, cohort, predictions),
        "maps": maps_summary(method, writer),
        "accuracy": accuracy,
        "against_members": against_members(accuracy, members, ensemble.is_regression),
        "age_gap": (ensemble_correction(ensemble).summary(
            [m.train.dir / "metrics.json" for m in ensemble.members])
            if ensemble.is_regression else None),
    }

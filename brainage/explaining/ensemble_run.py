"""An ensemble of finished training runs explained as one model (``make explain train_dirs=[A,B,C]``).

Steps: open the members and refuse a set that cannot form one ensemble
(:func:`brainage.ensemble.members.open_ensemble`; a member without ``grid.json`` is compared by its
own cohort's grid, :class:`~brainage.trained.TrainingCohorts`); check the targets against the
first member; read the cohort and select the subjects through the first member (its data config
and split); load every member's model and its analyzers (a named reference image taken from that
member's own training split: :func:`brainage.ensemble.loading.load_ensemble`); explain every
batch once with every member (:mod:`brainage.ensemble.one_model`) through one run's code
(:func:`brainage.explaining.batches.explain_with`); then the region reliability across members
(:mod:`brainage.explaining.ensemble_regions`) and one run's tables, group maps, figures and report.
A regressor ensemble's gap groups use the mean of its members' corrections
(:class:`~brainage.ensemble.correction.EnsembleCorrection`: the mean prediction's corrected gap).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from brainage.ensemble.correction import EnsembleCorrection
from brainage.ensemble.loading import load_ensemble
from brainage.ensemble.members import Ensemble, open_ensemble
from brainage.explaining.age_groups import check_regression_targets, gap_groups
from brainage.explaining.batches import Explainer, batch_rows, explain_with
from brainage.explaining.combine import combine_parts
from brainage.explaining.ensemble_regions import write_region_reliability
from brainage.explaining.settings import ExplainSettings
from brainage.explaining.targets import check_target_classes
from brainage.trained import OpenedRun, TrainingCohorts, select_subjects


def explain_ensemble(settings: ExplainSettings, work: Path) -> dict:
    """Explain the subjects with the ensemble of ``settings.train_dirs`` into ``work``; returns
    the summary (``explain.json``)."""
    t0 = time.perf_counter()
    cohorts = TrainingCohorts(settings.run.data, settings.progress)
    ensemble = open_ensemble(settings.train_dirs, settings.run.outputs_dir, cohorts.grid_of)
    first = ensemble.first
    if ensemble.is_regression:
        check_regression_targets(settings.targets, first.dir)
    else:
        check_target_classes(settings.targets, first.n_classes, first.dir)
    settings = replace(settings, run=replace(settings.run, train_dir=first.dir,
                                             model_path=first.model_path))
    prep = cohorts.of(first)
    opened = OpenedRun(first, prep, select_subjects(prep.table, settings.run.subjects))
    explainer = ensemble_explainer(settings, ensemble, opened, cohorts)
    batches = batch_rows(opened.rows, settings.batch_size)
    part = explain_with(settings, opened, explainer, batches, range(len(batches)), work)
    reliability = write_region_reliability(part.member_regions, settings.atlas.name,
                                           settings.top_k, settings.min_icc, work)
    members = {"train_dirs": ensemble.dirs, "n_members": len(ensemble.members),
               "explains": "the mean of the members' maps, each member explaining the "
                           "ensemble's target (for predicted: the arg-max of the mean "
                           "probabilities; a regressor's age output)"}
    return combine_parts(settings, opened, [part], work, t0,
                         extra={"ensemble": members, "reliability": reliability})


def ensemble_explainer(settings: ExplainSettings, ensemble: Ensemble, opened: OpenedRun,
                       cohorts: TrainingCohorts) -> Explainer:
    """Every member's model and analyzers as one :class:`Explainer`; a regressor ensemble's gap
    groups split its mean prediction's gap, corrected by the mean of its members' corrections."""
    loaded = load_ensemble(ensemble, opened.prep.input_shape, settings.methods,
                           lambda train: cohorts.reference_cohort(train, opened))
    groups = None
    if ensemble.is_regression:
        correction = EnsembleCorrection(tuple(m.correction for m in ensemble.members),
                                        ensemble.shared_validation).mean
        groups = gap_groups(opened, loaded.model, settings.batch_size, correction)
    return Explainer(loaded.model, loaded.analyzers, groups,
                     f"ensemble of {len(ensemble.members)}")

"""Test metrics of an age regressor (``model.task=regression``): MAE, RMSE, Pearson r and R² in
years, each with a seeded bootstrap 95 % interval, the bias-corrected brain-age gap, and the summary.

The interval is the percentile bootstrap over test subjects (Efron & Tibshirani 1993): resample the
subjects with replacement, recompute the metric, take the 2.5th and 97.5th percentiles. Seeded by
the run's seed, so a run's intervals are reproducible.
"""
from __future__ import annotations

import logging

import numpy as np

from brainage.data.age_gap import AgeBiasCorrection, gap_age_correlations, gap_table
from brainage.data.bins import ages_to_bins
from brainage.errors import TrainError
from brainage.training.checkpoint import RunState
from brainage.training.classification import classification_metrics
from brainage.training.intervals import CONFIDENCE
from brainage.training.settings import TrainSettings

log = logging.getLogger(__name__)

BOOTSTRAP_RESAMPLES = 2000
METRICS = ("mae", "rmse", "pearson_r", "r2")


def _metric_values(ages: np.ndarray, predicted: np.ndarray) -> dict:
    """Each metric over the last axis (one row per bootstrap resample, or a single row)."""
    error = predicted - ages
    centred_age = ages - ages.mean(axis=-1, keepdims=True)
    centred_pred = predicted - predicted.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (centred_age * centred_pred).sum(-1) / np.sqrt(
            (centred_age ** 2).sum(-1) * (centred_pred ** 2).sum(-1))
        r2 = 1 - (error ** 2).sum(-1) / (centred_age ** 2).sum(-1)
    return {"mae": np.abs(error).mean(-1), "rmse": np.sqrt((error ** 2).mean(-1)),
            "pearson_r": r, "r2": r2}


def regression_metrics(ages, predicted, seed: int,
                       resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """``mae``, ``rmse``, ``pearson_r``, ``r2`` and ``<metric>_ci95`` (bootstrap, seeded).

    A metric that is undefined (r with constant predictions) is None, as is its interval.
    """
    ages = np.asarray(ages, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    point = _metric_values(ages, predicted)
    result = {key: _finite(point[key]) for key in METRICS}
    if len(ages) >= 2:
        sampled = _bootstrap(ages, predicted, seed, resamples)
        for key in METRICS:
            result[f"{key}_ci95"] = None if result[key] is None else _interval(sampled[key])
    result.update(ci_method=f"percentile bootstrap, {resamples} resamples, "
                            f"{100 * CONFIDENCE:g} %", test_n=int(len(ages)))
    return result


def _bootstrap(ages: np.ndarray, values: np.ndarray, seed: int, resamples: int) -> dict:
    """:func:`_metric_values` of ``resamples`` seeded resamples of the subjects."""
    rows = np.random.default_rng(seed).integers(0, len(ages), size=(resamples, len(ages)))
    return _metric_values(ages[rows], values[rows])


def _interval(samples: np.ndarray) -> list[float] | None:
    """The percentile interval of the finite ``samples`` (None when there are none)."""
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return None
    tail = 100 * (1 - CONFIDENCE) / 2
    return [float(np.percentile(samples, tail)), float(np.percentile(samples, 100 - tail))]


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def age_gap_results(data, test_predicted, val_predicted, seed: int = 0):
    """The correction fitted on the validation split, the test split's gap table, and
    ``metrics.json``'s ``age_gap`` entry.

    The entry's ``test_corr_gap_corrected_age_ci95`` is the percentile bootstrap interval (seeded
    by ``seed``) of the corrected gap's correlation with age on the test split: with tens of test
    subjects its width (about ±0.3 at n=36) says whether a goal such as |r| ≤ 0.05 can be judged.

    A model whose validation predictions do not grow with age (an undertrained one) cannot be
    corrected: the correction is None, the corrected columns are NaN, and ``age_gap.problem``
    says why; the run still finishes.
    """
    ages = data.table["age"].to_numpy(dtype=float)
    problem = None
    try:
        correction = AgeBiasCorrection.fit(ages[data.indices("val")], val_predicted)
    except TrainError as err:
        log.warning("%s", err)
        correction, problem = AgeBiasCorrection(np.nan, np.nan, np.nan, np.nan, 0), str(err)
    test_rows = data.indices("test")
    table = gap_table(data.table["subject_id"].to_numpy()[test_rows], ages[test_rows],
                      test_predicted, correction)
    correlations = gap_age_correlations(table)
    corrected = correlations["gap_corrected"]
    entry = {"correction": None if problem else correction.as_dict(), "fitted_on": "val",
             "problem": problem,
             "test_corr_with_age": correlations,
             "test_abs_corr_gap_corrected_age": None if corrected is None else abs(corrected),
             "test_corr_gap_corrected_age_ci95": _corrected_gap_interval(table, corrected, seed),
             "test_mean_gap": float(table["gap"].mean()),
             "test_mean_gap_corrected": float(table["gap_corrected"].mean())}
    return correction, table, entry


def _corrected_gap_interval(table, corrected: float | None, seed: int) -> list[float] | None:
    if corrected is None or len(table) < 3:
        return None
    ages = table["age"].to_numpy(dtype=float)
    gaps = table["gap_corrected"].to_numpy(dtype=float)
    return _interval(_bootstrap(ages, gaps, seed, BOOTSTRAP_RESAMPLES)["pearson_r"])


def regression_run_metrics(settings: TrainSettings, data, state: RunState, test_predicted,
                           val_predicted, timings: dict, baselines: dict | None = None):
    """``metrics.json`` of a regression run and its ``test_predictions.csv`` table.

    Returns
    -------
    metrics : dict
    table : DataFrame
        From :func:`brainage.data.age_gap.gap_table`.
    """
    ages = data.table["age"].to_numpy(dtype=float)
    train_ages = ages[data.indices("train")]
    metrics = {"task": "regression", "loss": settings.model.regression_loss,
               **regression_metrics(ages[data.indices("test")], test_predicted, settings.seed)}
    _, table, gap_entry = age_gap_results(data, test_predicted, val_predicted,
                                          settings.seed)
    metrics.update(
        age_gap=gap_entry,
        binned=binned_metrics(data, test_predicted),
        age_standardisation={"mean": float(train_ages.mean()), "sd": float(train_ages.std())},
        bin_edges=[float(e) for e in data.bin_edges],
        epochs_run=state.epochs_done, best_epoch=state.best_epoch,
        stopped_early=state.stopped_early, monitor=settings.monitor,
        best_monitor_value=state.best_value, seed=settings.seed,
        resumed=settings.resume is not None,
        init_from=state.init_from,
        precise_bn={"enabled": settings.precise_bn, "batches": settings.precise_bn_batches},
        cv_folds=settings.cv_folds, cv_fold=settings.cv_fold,
        baselines=baselines or {}, timings=timings,
    )
    return metrics, table


def binned_metrics(data, test_predicted) -> dict:
    """The predicted ages put into the run's age bins (ages beyond the outer edges into the outer
    bins), scored as a classifier's are (accuracy with its Wilson interval, per bin, confusion
    matrix): the same numbers the ridge-on-age baselines report, so the regressor stands beside
    the classifier and every baseline of the split."""
    predicted_bins = ages_to_bins(test_predicted, data.bin_edges)
    return {"description": "predicted age binned at bin_edges",
            **classification_metrics(data.labels("test"), predicted_bins, data.n_classes)}


def format_regression_summary(metrics: dict) -> str:
    """MAE, RMSE, r and R² with their intervals, the network beside the baselines on the same
    split, and the gap's correlation with age before and after correction."""
    lines = [f"{'test, n=' + str(metrics['test_n']):<16}{'value (95 % CI)':>26}"]
    for key, unit in (("mae", " y"), ("rmse", " y"), ("pearson_r", ""), ("r2", "")):
        lines.append(f"{key:<16}{_with_interval(metrics[key], metrics.get(key + '_ci95'), unit):>26}")
    gap = metrics["age_gap"]["test_corr_with_age"]
    interval = metrics["age_gap"].get("test_corr_gap_corrected_age_ci95")
    lines.append(f"corr(gap, age) {_num(gap['gap']):>10}   after correction (fitted on val) "
                 + _with_interval(gap["gap_corrected"], interval, ""))
    if metrics.get("baselines"):
        lines += ["", f"{'same split':<28}{'test MAE (y)':>14}{'binned acc.':>13}  penalty"]
        lines.append(f"{'CNN':<28}{_num(metrics['mae']):>14}"
                     f"{_percent((metrics.get('binned') or {}).get('test_accuracy')):>13}  -")
        for name, entry in metrics["baselines"].items():
            penalty = f"{entry['penalty']['name']}={entry['penalty']['value']:g}"
            lines.append(f"{name:<28}{_num(entry.get('mae')):>14}"
                         f"{_percent(entry.get('test_accuracy')):>13}  {penalty}")
    return "\n".join(lines)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _with_interval(value, interval, unit: str) -> str:
    if value is None:
        return "-"
    if not interval:
        return f"{value:.3f}{unit}"
    return f"{value:.3f}{unit} ({interval[0]:.3f} to {interval[1]:.3f})"

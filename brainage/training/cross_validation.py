"""Stratified k-fold cross-validation: the split of each fold and the table over all folds.

``trainer.cv_folds=k`` replaces the data stage's single train/validation/test split: the cohort
(after balancing) is cut into k folds stratified by age bin; fold ``i`` is the test split of
sub-run ``fold<i>/``, and the rest is split into training and validation in the data stage's
proportions (``data.split``), stratified again. Every subject is tested exactly once over the k
folds. The folds' ``metrics.json`` are gathered into ``sweep.csv``, ``sweep_summary.csv`` (mean and
SD over folds) and ``sweep.md`` by :mod:`brainage.training.sweeps`. A regression run
(``model.task=regression``) is stratified by age bin the same way; its fold table holds the test
MAE, RMSE, Pearson r, R² and binned accuracy of every fold and the baselines' MAE and binned
accuracy, with mean and SD over folds.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from brainage.data.bins import stratified_split
from brainage.errors import DataError, TrainError
from brainage.training.sweeps import write_sweep_tables

log = logging.getLogger(__name__)

FOLD_DIR = "fold{fold}"
# A regressor's test metrics summarised over folds (metrics.json keys, years for the errors).
REGRESSION_FOLD_METRICS = ("mae", "rmse", "pearson_r", "r2")


def fold_split(bins, k: int, fold: int, seed: int, val_fraction: float) -> np.ndarray:
    """Split label ("train"/"val"/"test") per subject for fold ``fold`` of ``k``.

    Parameters
    ----------
    bins : array of int
        Age bin per subject.
    val_fraction : float
        Share of the non-test subjects that validate (stratified).
    seed : int
        Seeds the folds and the validation split; the same seed gives the same folds.

    Raises
    ------
    TrainError
        A bin with fewer subjects than folds, or too few for a validation split.
    """
    from sklearn.model_selection import StratifiedKFold

    bins = np.asarray(bins)
    smallest = int(np.bincount(bins).min())
    if smallest < k:
        raise TrainError(f"trainer.cv_folds={k}: the smallest age bin has {smallest} subjects; "
                         "every fold needs one of each bin")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    rest, test = list(folds.split(np.zeros(len(bins)), bins))[fold]
    split = np.empty(len(bins), dtype=object)
    split[test] = "test"
    try:
        split[rest] = stratified_split(bins[rest], [1 - val_fraction, val_fraction, 0.0], seed)
    except DataError as err:
        raise TrainError(f"trainer.cv_folds={k}, fold {fold}: {err}") from err
    return split


def fold_data(data, settings):
    """``data`` with the split of ``settings.cv_fold`` of ``settings.cv_folds``.

    The fold's seed is the data stage's split seed (``data.split_seed``, the run's seed when
    null) and its validation share that of ``data.split``.
    """
    fractions = [float(f) for f in settings.data.split]
    split_seed = settings.data.split_seed
    seed = settings.seed if split_seed is None else int(split_seed)
    table = data.table.copy()
    table["split"] = fold_split(table["bin"].to_numpy(), settings.cv_folds, settings.cv_fold,
                                seed, fractions[1] / (fractions[0] + fractions[1]))
    return dataclasses.replace(data, table=table)


def fold_dir(run_dir: Path, fold: int) -> Path:
    return Path(run_dir) / FOLD_DIR.format(fold=fold)


def summarise_folds(run_dir: Path, results: list) -> dict:
    """Write the fold table (``sweep.csv``, ``sweep_summary.csv``, ``sweep.md``) into
    ``run_dir``; returns the mean and SD over folds of the test metrics, network and baselines:
    the accuracy of a classifier, MAE, RMSE, r and R² of a regressor (baselines: their MAE)."""
    paths = write_sweep_tables(run_dir, None, "cv_fold")
    summary = {"cv_folds": len(results), "tables": {k: str(p) for k, p in paths.items()}}
    if results[0].get("task") == "regression":
        return _summarise_regression_folds(run_dir, results, summary)
    columns = {"cnn": [r["test_accuracy"] for r in results]}
    for name in results[0].get("baselines", {}):
        columns[name] = [r["baselines"][name]["test_accuracy"] for r in results]
    lines = [f"{'test accuracy over folds':<26}{'mean %':>8}{'SD %':>7}  per fold %"]
    for name, values in columns.items():
        values = np.asarray(values, dtype=float)
        mean, sd = float(values.mean()), float(values.std(ddof=1))
        summary[name] = {"mean": mean, "sd": sd, "per_fold": values.tolist()}
        lines.append(f"{name:<26}{100 * mean:8.2f}{100 * sd:7.2f}  "
                     + " ".join(f"{100 * v:.1f}" for v in values))
    log.info("%d-fold cross-validation (%s)\n%s", len(results), run_dir, "\n".join(lines))
    return summary


def _summarise_regression_folds(run_dir: Path, results: list, summary: dict) -> dict:
    """A regressor's folds: ``summary["cnn"][metric]`` and ``summary[<baseline>]["mae"]``, each
    ``{mean, sd, per_fold}`` (an undefined metric of a fold, e.g. r of constant predictions, is
    NaN and left out of its mean and SD)."""
    columns = {("cnn", key): [r[key] for r in results] for key in REGRESSION_FOLD_METRICS}
    columns[("cnn", "binned_accuracy")] = [(r.get("binned") or {}).get("test_accuracy") for r in results]
    for name in results[0].get("baselines", {}):
        columns[(name, "mae")] = [r["baselines"][name].get("mae") for r in results]
        columns[(name, "binned_accuracy")] = [r["baselines"][name].get("test_accuracy") for r in results]
    lines = [f"{'test metric over folds':<36}{'mean':>9}{'SD':>8}  per fold"]
    for (name, key), values in columns.items():
        values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if len(finite) else None
        sd = float(finite.std(ddof=1)) if len(finite) > 1 else None
        summary.setdefault(name, {})[key] = {"mean": mean, "sd": sd, "per_fold": values.tolist()}
        lines.append(f"{name + ' ' + key:<36}{_number(mean):>9}{_number(sd):>8}  "
                     + " ".join(f"{v:.3f}" for v in values))
    log.info("%d-fold cross-validation (%s)\n%s", len(results), run_dir, "\n".join(lines))
    return summary


def _number(value) -> str:
    return "-" if value is None else f"{value:.3f}"

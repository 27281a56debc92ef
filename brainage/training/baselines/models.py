"""The baselines: linear scikit-learn models, a penalty chosen on the validation split, tested once.

Each baseline is features (``blocks``: block means of the volume, standardised; ``regions``: mean
grey matter per atlas region, standardised) and a target: ``bin`` (multinomial logistic
regression, L2 penalty ``C``) or ``age`` (ridge regression on age, penalty ``alpha``, whose
prediction is put into the run's age bins). Every model is fitted on the training split alone;
the penalty with the best validation accuracy is kept (ties: the lower validation loss, log-loss or
mean absolute error), then the test split is predicted once.

The standardised features are projected onto an orthonormal basis of the centred training rows
before the linear model (:class:`TrainingRowBasis`). For an L2 penalty with an unpenalised
intercept this is an exact reparametrisation, not a reduction: any weight component orthogonal to
the centred training rows adds only a constant (taken by the intercept) while raising the penalty,
so the optimum has none, and the penalty is the same on the orthonormal basis. Every fit becomes a
problem of at most n_train dimensions (20,150 block means -> 167).
"""
from __future__ import annotations

import time

import numpy as np

from brainage.data.bins import ages_to_bins
from brainage.training.baselines.catalogue import Baseline
from brainage.training.classification import classification_metrics

# A feature whose training SD is below this share of the median feature's is left out: a block
# at the brain's edge where one training subject has a trace of GM would otherwise be scaled up
# a thousandfold, and a test subject with some GM there predicted hundreds of years off.
MIN_RELATIVE_SD = 1e-3


class TrainingRowBasis:
    """Standardise with the training split's mean and SD (features that barely vary in training
    left out, :data:`MIN_RELATIVE_SD`), then project onto an orthonormal basis of the centred
    training rows (from the n x n Gram matrix: cheap when features outnumber subjects). Exact for
    L2-penalised linear models; see the module's note."""

    def fit(self, features: np.ndarray) -> "TrainingRowBasis":
        sd = features.std(axis=0)
        varying = sd[sd > 0]
        self.kept_ = sd > (MIN_RELATIVE_SD * np.median(varying) if varying.size else 0.0)
        self.mean_, self.scale_ = features.mean(axis=0)[self.kept_], sd[self.kept_]
        centred = (features[:, self.kept_] - self.mean_) / self.scale_
        eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
        keep = eigenvalues > 1e-10 * max(eigenvalues.max(initial=0.0), 1e-300)
        self.basis_ = centred.T @ (vectors[:, keep] / np.sqrt(eigenvalues[keep]))
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        return ((features[:, self.kept_] - self.mean_) / self.scale_) @ self.basis_


def split_features(features: np.ndarray, data) -> dict:
    """``{split: features of its subjects on the training rows' basis}`` for train, val, test."""
    splits = {split: data.indices(split) for split in ("train", "val", "test")}
    basis = TrainingRowBasis().fit(features[splits["train"]])
    return {split: basis.transform(features[rows]) for split, rows in splits.items()}


def _fit(baseline: Baseline, penalty: float, x, y, ages):
    from sklearn.linear_model import LogisticRegression, Ridge

    if baseline.target == "age":
        return Ridge(alpha=penalty).fit(x, ages)
    return LogisticRegression(C=penalty, max_iter=5000).fit(x, y)


def _predict(baseline: Baseline, model, x, edges, n_classes: int):
    """Predicted bins and, for the validation loss, predicted ages or class probabilities."""
    if baseline.target == "age":
        ages = model.predict(x)
        return ages_to_bins(ages, edges), ages
    proba = np.zeros((len(x), n_classes))
    proba[:, model.classes_] = model.predict_proba(x)
    return proba.argmax(axis=1), proba


def _loss(baseline: Baseline, output, y, ages) -> float:
    if baseline.target == "age":
        return float(np.mean(np.abs(output - ages)))
    return float(-np.mean(np.log(np.clip(output[np.arange(len(y)), y], 1e-15, None))))


def fit_baseline(baseline: Baseline, x: dict, data, penalties, by_mae: bool = False) -> dict:
    """Fit ``baseline`` on the training split of ``data``, choose its penalty on the validation
    split, test it once; returns its entry of ``metrics.json``'s ``baselines``.

    ``x`` holds each split's features as :func:`split_features` gives them. ``by_mae`` (an age
    baseline beside a regression network): the penalty with the lowest validation MAE is kept
    rather than the best binned accuracy.
    """
    start = time.perf_counter()
    y = {split: data.labels(split) for split in x}
    ages = {split: data.table["age"].to_numpy(dtype=float)[data.indices(split)] for split in x}
    edges, n_classes = data.bin_edges, data.n_classes
    tried = []
    for penalty in penalties:
        model = _fit(baseline, penalty, x["train"], y["train"], ages["train"])
        bins, output = _predict(baseline, model, x["val"], edges, n_classes)
        tried.append({"penalty": float(penalty), "val_accuracy": float(np.mean(bins == y["val"])),
                      "val_loss": _loss(baseline, output, y["val"], ages["val"]), "model": model})
    best = (min(tried, key=lambda t: t["val_loss"]) if by_mae
            else max(tried, key=lambda t: (t["val_accuracy"], -t["val_loss"])))
    bins, output = _predict(baseline, best["model"], x["test"], edges, n_classes)
    result = {"description": baseline.description, "features": baseline.features,
              "penalty": {"name": baseline.penalty_name, "value": best["penalty"],
                          "at_grid_edge": best["penalty"] in (min(penalties), max(penalties))},
              "val_accuracy": best["val_accuracy"], "val_loss": best["val_loss"],
              "val_loss_kind": "mae_years" if baseline.target == "age" else "log_loss",
              **classification_metrics(y["test"], bins, n_classes)}
    if baseline.target == "age":
        result["test_mae_years"] = float(np.mean(np.abs(output - ages["test"])))
        result["mae"] = result["test_mae_years"]  # beside the regression network's ``mae``
    result["seconds"] = time.perf_counter() - start
    return result

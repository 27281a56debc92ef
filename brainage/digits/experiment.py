"""One network of the digits experiment: train it, explain every class with DTD, measure.

The stage (:mod:`brainage.seed_digits`) runs this for the dense network and the CNN and writes
what it returns: the figures' inputs and the network's row of ``digits.json``/``digits.csv``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from brainage.digits.antiheatmap import anti_heatmap_check, claim_sentence, pearson
from brainage.digits.data import DigitsSplit
from brainage.digits.networks import build_cnn, build_dense, train_network
from brainage.digits.settings import DigitsSettings, FitSettings

NETWORKS = ("dense", "cnn")


class MisclassifiedDigit(NamedTuple):
    """A misclassified test digit with the maps of the predicted and of the true class."""

    image: np.ndarray
    true: int
    predicted: int
    map_predicted: np.ndarray
    map_true: np.ndarray


@dataclass(frozen=True)
class NetworkRun:
    """What one network produced: its summary row and the arrays the figures show."""

    name: str
    result: dict
    logits: np.ndarray
    maps_all: np.ndarray
    picks: np.ndarray
    misclassified: MisclassifiedDigit | None


def build_network(name: str, settings: DigitsSettings, input_shape):
    """The ``dense`` or ``cnn`` network of ``settings`` for digits of ``input_shape``."""
    if name == "dense":
        return build_dense(input_shape, settings.dense_hidden)
    return build_cnn(input_shape, settings.cnn_filters, settings.cnn_pool_after, settings.cnn_dense_units)


def fit_settings(name: str, settings: DigitsSettings) -> FitSettings:
    return settings.dense_fit if name == "dense" else settings.cnn_fit


def first_misclassified(split: DigitsSplit, predicted, maps_all) -> MisclassifiedDigit | None:
    """The first wrongly classified test digit (None when every one is right)."""
    wrong = np.flatnonzero(predicted != split.y_test)
    if not len(wrong):
        return None
    i = int(wrong[0])
    true, pred = int(split.y_test[i]), int(predicted[i])
    return MisclassifiedDigit(split.x_test[i], true, pred, maps_all[pred, i], maps_all[true, i])


def _summary_row(model, fit: FitSettings, split: DigitsSplit, predicted, expl, check, name,
                 case, train_s) -> dict:
    chosen = np.arange(len(split.y_test))
    rel_error = expl.rel_error[predicted, chosen]
    return {
        "parameters": int(model.count_params()), "epochs": fit.epochs,
        "train_seconds": round(train_s, 1), "test_accuracy": float((predicted == split.y_test).mean()),
        "n_train": int(len(split.y_train)), "n_test": int(len(split.y_test)),
        "conservation_max_rel_error": float(np.nanmax(rel_error)),
        "conservation_median_rel_error": float(np.nanmedian(rel_error)),
        "negative_share_chosen": float(np.mean(expl.negative_share[predicted, chosen])),
        "anti_heatmap": check, "claim": claim_sentence(name, check),
        "misclassified": int((predicted != split.y_test).sum()),
        "misclassified_example_map_correlation": (
            None if case is None else float(pearson(case.map_predicted[None], case.map_true[None])[0])),
    }


def run_network(name: str, settings: DigitsSettings, split: DigitsSplit) -> NetworkRun:
    """Train network ``name`` (seeded), explain every class of every test digit and measure
    accuracy, conservation and the anti-heatmap claim on the correct test digits."""
    import keras

    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import analyzer_from_config

    fit = fit_settings(name, settings)
    keras.utils.set_random_seed(settings.seed)
    started = time.perf_counter()
    model = train_network(build_network(name, settings, split.x_train.shape[1:]), split.x_train,
                          split.y_train, fit.epochs, fit.batch_size, fit.learning_rate)
    train_s = time.perf_counter() - started
    logits = np.asarray(model.predict(split.x_test, verbose=0))
    predicted = logits.argmax(axis=1)
    expl = analyzer_from_config(model, settings.explainer).explain(split.x_test, target="all")
    maps_all = np.asarray(expl.maps)
    correct = np.flatnonzero(predicted == split.y_test)
    subset = correct if settings.anti_subset is None else correct[:settings.anti_subset]
    check = anti_heatmap_check(maps_all[:, subset], logits[subset])
    picks = np.random.default_rng(settings.seed).choice(correct, min(settings.examples, len(correct)),
                                                        replace=False)
    case = first_misclassified(split, predicted, maps_all)
    result = _summary_row(model, fit, split, predicted, expl, check, name, case, train_s)
    return NetworkRun(name, result, logits, maps_all, picks, case)


def results_table(results: dict):
    """``digits.csv``: one row per network, the anti-heatmap measurements as ``anti_*`` columns."""
    import pandas as pd

    rows = []
    for name, r in results.items():
        flat = {k: v for k, v in r.items() if k not in ("anti_heatmap", "claim")}
        rows.append({"network": name, **flat, **{f"anti_{k}": v for k, v in r["anti_heatmap"].items()}})
    return pd.DataFrame(rows)

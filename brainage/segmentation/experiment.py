"""Seed 003's experiment on our data: train the U-Net, score it, explain its predicted masks."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from brainage.errors import SegmentationError
from brainage.segmentation.dataset import SegmentationData
from brainage.segmentation.explanations import RegionExplanation, explain_regions
from brainage.segmentation.network import build_unet, train_unet
from brainage.segmentation.scores import dice, summary
from brainage.segmentation.settings import UNetSettings

PREDICT_BATCH = 4


@dataclass(frozen=True)
class UNetRun:
    """What the experiment produced: the summary and the arrays the figure and maps show.

    Attributes
    ----------
    model : keras.Model
    summary : dict
        ``metrics.json``'s content.
    explained : int array
        Rows of the data (test subjects) that were explained.
    logits : float32 array (len(explained), *box)
    explanations : list of RegionExplanation
    """

    model: object
    summary: dict
    explained: np.ndarray
    logits: np.ndarray
    explanations: list[RegionExplanation]


def predict_logits(model, x: np.ndarray) -> np.ndarray:
    """Per-voxel logits ``(n, *box)``."""
    return np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0))[..., 0]


def _split_scores(model, data: SegmentationData, split: str, threshold: float) -> dict:
    rows = data.rows(split)
    if not len(rows):
        return {"n": 0}
    predicted = predict_logits(model, data.x[rows]) > threshold
    prior = np.broadcast_to(data.prior.astype(bool), predicted.shape)
    return {"dice": summary(dice(predicted, data.y[rows])),
            "atlas_prior_dice": summary(dice(prior, data.y[rows])),
            "predicted_voxels_median": float(np.median(predicted.reshape(len(rows), -1).sum(1))),
            "true_voxels_median": float(np.median(data.y[rows].reshape(len(rows), -1).sum(1)))}


def _explained_rows(model, data: SegmentationData, settings: UNetSettings):
    """The first ``explain.subjects`` test subjects whose predicted mask is not empty, and logits."""
    rows = data.rows("test")
    logits = predict_logits(model, data.x[rows])
    keep = (logits > settings.threshold).reshape(len(rows), -1).any(axis=1)
    if not keep.any():
        raise SegmentationError("unet: the U-Net labels no voxel of any test subject as the structure "
                                "(train longer: fit.epochs, or lower threshold)")
    pick = np.flatnonzero(keep)[:settings.explain_subjects]
    return rows[pick], logits[pick]


def run_experiment(data: SegmentationData, settings: UNetSettings) -> UNetRun:
    """Train (seeded), score Dice on the validation and test splits, explain test subjects."""
    import keras

    keras.utils.set_random_seed(settings.seed)
    train = data.rows("train")
    if settings.fit.max_train_subjects is not None:
        train = train[:settings.fit.max_train_subjects]
    if not len(train):
        raise SegmentationError("unet: the training split is empty (more subjects, or data.split)")
    model = build_unet(data.x.shape[1:], settings.filters, settings.pool, settings.use_bias)
    started = time.perf_counter()
    history = train_unet(model, data.x[train], data.y[train], settings.fit.epochs,
                         settings.fit.batch_size, settings.fit.learning_rate)
    train_s = time.perf_counter() - started
    scores = {split: _split_scores(model, data, split, settings.threshold) for split in ("val", "test")}
    rows, logits = _explained_rows(model, data, settings)
    started = time.perf_counter()
    explanations = explain_regions(model, data.x[rows], logits > settings.threshold, settings.methods)
    explain_s = time.perf_counter() - started
    result = {
        "parameters": int(model.count_params()), "n_train": int(len(train)),
        "epochs": settings.fit.epochs, "train_seconds": round(train_s, 1),
        "final_loss": history["loss"][-1], "scores": scores,
        "explained_subjects": data.table["subject_id"].iloc[rows].tolist(),
        "explained_value": "sum of the logits over the predicted mask",
        "explain_seconds": round(explain_s, 1),
        "methods": {e.tag: {"method": e.method, **e.conservation()} for e in explanations},
    }
    return UNetRun(model, result, rows, logits, explanations)

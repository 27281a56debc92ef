"""How well the scored model does its task, reported before any map is judged.

A map can only find a planted signal (``localisation.mask=planted``) that the model uses, and a
model that did not learn the plant does not use it: its localisation scores say nothing about the
method. So the evaluate stage reads the training run's test metrics first (:func:`model_skill`)
and, on a planted ground truth, voids the localisation check of a model below
``localisation.min_model_accuracy`` (a classifier's test balanced accuracy) or
``localisation.min_model_r2`` (a regressor's test R²): the numbers are still written, the check is
neither met nor failed, and the scorecard's verdict says why (:func:`localisation_void`).
"""
from __future__ import annotations

import math

from brainage.reporting.scorecard_cells import describe_skill


def model_skill(metrics: dict) -> dict:
    """The test skill of a training run from its ``metrics.json``.

    Returns
    -------
    dict
        ``measure`` ("test balanced accuracy" or "test R²"), ``value`` (None when the run has no
        test subjects), ``ci95`` (``[low, high]`` or None) and ``n`` (test subjects).
    """
    if metrics.get("task") == "regression":
        measure, value, ci95 = "test R²", metrics.get("r2"), metrics.get("r2_ci95")
    else:
        measure = "test balanced accuracy"
        value = metrics.get("test_balanced_accuracy", metrics.get("test_accuracy"))
        ci95 = metrics.get("test_accuracy_ci95")
    finite = value is not None and math.isfinite(float(value))
    return {"measure": measure, "value": float(value) if finite else None,
            "ci95": [float(c) for c in ci95] if ci95 else None, "n": metrics.get("test_n")}


def localisation_void(skill: dict, localisation) -> str | None:
    """Why the localisation check is void for this model, or None when it stands.

    Only a planted ground truth (``localisation.mask=planted``) voids it: the plant is what the
    model must use, so a model that did not learn it (below the threshold for its task, or with no
    test subjects to say) leaves nothing to localise. The ageing masks are scored on any model.
    """
    if localisation.mask != "planted":
        return None
    regression = skill["measure"] == "test R²"
    threshold = localisation.min_model_r2 if regression else localisation.min_model_accuracy
    key = "min_model_r2" if regression else "min_model_accuracy"
    if skill["value"] is None:
        return f"the training run reports no {skill['measure']}, so it is unknown whether the " \
               "model learnt the plant"
    if skill["value"] < threshold:
        return (f"the model's {describe_skill(skill)} is below localisation.{key}={threshold:g}: it did "
                "not learn the plant, so no map of it can be judged against the plant")
    return None

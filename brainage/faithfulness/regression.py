"""Scoring an age regressor (``model.task=regression``): what the scorecard means for one output.

A regression run has one output, the predicted age in years (its fixed-affine head is folded into
the last Dense layer, so layer-wise methods explain years directly). Its scorecard differs from a
classifier's in three ways:

* **Target**: the age output only. ``target=predicted`` (the default) or ``0`` explain it;
  ``true``, other class indices and every contrast suffix (``-vs-mean``, ``-logodds``,
  ``-vs-runnerup``, ``-vs-<k>``) need classes, and asking for one (``target=…`` or ``pairs=…``) is
  an :class:`~brainage.errors.EvaluateError`: the user named it, so it is not silently dropped.
* **Methods**: explainers that contrast classes (a ``contrast`` parameter, CLRP, SGLRP) are
  *skipped* with a note (``evaluate.json``'s ``skipped_methods``, the verdict and the report, under
  the scorecard): ``configs/evaluate.yaml``'s default list holds them, and evaluating a regression
  run with the defaults should score every other method. A skipped method named in ``pairs=`` is
  an error; so is a selection that leaves no method.
* **Checks**: the class-map correlation (youngest vs oldest class maps) has no meaning for a single
  output. It is *not applicable*: ``pass_class_maps`` holds ``n/a`` (not a fail, not "not
  measured"), a row's goals are counted out of the four others, and ``verdict`` is ``pass`` when
  those four pass.

Sign conventions. Region perturbation tracks the predicted age: ``drop_k = age(x) − age(x_k)``
with ``x_k`` the input whose ``k`` most relevant patch groups hold the baseline, and AOPC the mean
drop in years. Positive relevance is evidence for a *higher* predicted age, so a faithful map's
most-relevant-first removal lowers the prediction: higher AOPC is more faithful, as for a
classifier's logit. Conservation: a conservative method's relevance sums to the predicted age;
a reference-rooted one's (DeepLIFT, DTD with a reference, integrated gradients) to the predicted
age minus the reference's predicted age.
"""
from __future__ import annotations

import pandas as pd

from brainage.errors import EvaluateError
from brainage.faithfulness.targets import TargetMode, parse_target_mode

# Checks without meaning for one output, and why (evaluate.json, verdict, report).
REGRESSION_NOT_APPLICABLE = {
    "class_maps": "a regression has one output (the age in years): there is no youngest and "
                  "oldest class whose maps could be compared"}
CONTRASTING_EXPLAINERS = ("clrp", "sglrp")  # registry names that contrast a class with others
EXPLAINED_OUTPUT = "age (years)"


def needs_classes(params: dict) -> str | None:
    """Why an explainer's parameters need classes (a contrast, CLRP/SGLRP), or None."""
    name = str(params.get("name", ""))
    if name in CONTRASTING_EXPLAINERS:
        return f"{name} contrasts the explained class with the other classes"
    contrast = params.get("contrast")
    if contrast is not None:
        return f"contrast={contrast} contrasts classes"
    return None


def regression_methods(methods: dict) -> tuple[dict, dict]:
    """``(kept, skipped)``: the explainers that explain the age output, and ``{name: reason}`` of
    those that need classes.

    Raises
    ------
    EvaluateError
        Every selected explainer needs classes.
    """
    skipped = {name: reason for name, params in methods.items()
               if (reason := needs_classes(params)) is not None}
    kept = {name: params for name, params in methods.items() if name not in skipped}
    if not kept:
        raise EvaluateError(f"explainer={list(methods)}: every selected explainer needs classes "
                            f"({'; '.join(f'{m}: {r}' for m, r in skipped.items())}), but the "
                            "training run is a regression with one output; select e.g. "
                            "explainer=[dtd,gradient_x_input]")
    return kept, skipped


def check_regression_request(targets, pairs, skipped: dict, run_dir) -> None:
    """Refuse target modes and pairs that need classes on a regression run.

    Parameters
    ----------
    targets : sequence of TargetMode
    pairs : sequence of str
        ``method:target``.
    skipped : dict
        From :func:`regression_methods`.
    run_dir : path
        The training run, named in the message.
    """
    for mode in targets:
        _check_mode(mode, f"target {mode.text!r}", run_dir)
    for text in pairs:
        method, _, target = str(text).partition(":")
        if method in skipped:
            raise EvaluateError(f"pairs: {text!r}: {method} is skipped on the regression run "
                                f"{run_dir} ({skipped[method]}); pair a method without classes")
        _check_mode(parse_target_mode(target), f"pairs: {text!r}", run_dir)


def _check_mode(mode: TargetMode, where: str, run_dir) -> None:
    if mode.anchor in ("predicted", 0) and not mode.suffix:
        return
    what = (f"the contrast {mode.suffix!r}" if mode.anchor in ("predicted", 0)
            else f"the class anchor {mode.anchor!r}")
    raise EvaluateError(f"{where}: {what} needs classes, but the training run {run_dir} is a "
                        "regression (one output, the age in years); use target=predicted")


def regression_scope(methods: dict, settings, run_dir) -> tuple[dict, dict]:
    """``(kept, skipped)`` explainers of a regression run, after refusing ``settings``' (a
    :class:`~brainage.faithfulness.settings.ScoringSettings`) target modes and pairs that need
    classes; see :func:`regression_methods` and :func:`check_regression_request`."""
    kept, skipped = regression_methods(methods)
    check_regression_request(settings.targets, settings.pairs, skipped, run_dir)
    return kept, skipped


def regression_subjects(subjects: pd.DataFrame) -> pd.DataFrame:
    """The scored subjects' table of a regression: ``predicted_age`` (years) in place of the
    arg-max class and ``logit_0``."""
    return subjects.drop(columns=["predicted"]).rename(columns={"logit_0": "predicted_age"})


def regression_summary(skipped: dict) -> dict:
    """``evaluate.json``'s account of a regression run's scoring."""
    return {"task": "regression", "explained_output": EXPLAINED_OUTPUT,
            "skipped_methods": dict(skipped),
            "not_applicable": dict(REGRESSION_NOT_APPLICABLE)}

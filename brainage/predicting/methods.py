"""Which explanation method draws the maps of ``make predict``, and its parameters.

``method: null`` lets the model's own evaluation choose, as ``make explain``'s default was chosen:
the DTD variant that the newest finished ``make evaluate`` run of this training run picked by the
scorecard rule (``evaluate.json``'s ``default_choice``; docs/evaluating.md, "Which DTD variant");
without such a run, the first method of ``make explain``'s default (``configs/explain.yaml``),
itself the rule's choice on trained quick models. ``method=<name>`` takes any method of
``configs/explainer/`` with its YAML parameters.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from brainage.data.reference_images import REFERENCE_KEYS, with_reference_images
from brainage.errors import PredictError
from brainage.predicting.cohort import TrainingCohort
from brainage.runs.scorecards import evaluate_run
from brainage.trained import load_analyzers

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EXPLAINERS = CONFIGS / "explainer"


@dataclass(frozen=True)
class ChosenMethod:
    """The maps' method, its parameters (``configs/explainer/<name>.yaml``) and who chose it."""

    name: str
    params: dict
    chosen_by: str


def choose_method(method: str | None, train_dir, outputs_dir) -> ChosenMethod:
    """The method named by ``method``, else the model's default (see the module docstring).

    Raises
    ------
    PredictError
        ``method`` names no method of ``configs/explainer/``.
    """
    if method:
        return ChosenMethod(method, method_params(method), f"method={method}")
    run = evaluate_run(train_dir, outputs_dir)
    if run is not None:
        summary = json.loads((run / "evaluate.json").read_text())
        chosen = (summary.get("default_choice") or {}).get("method")
        if chosen and (EXPLAINERS / f"{chosen}.yaml").is_file():
            return ChosenMethod(chosen, method_params(chosen),
                                f"the scorecard of {run} (its default choice)")
    name = explain_default()
    return ChosenMethod(name, method_params(name),
                        "make explain's default (configs/explain.yaml; no evaluate run of this "
                        "model chose one)")


def explain_default() -> str:
    """The first method of ``make explain``'s default list (``configs/explain.yaml``)."""
    from omegaconf import OmegaConf

    for entry in OmegaConf.load(CONFIGS / "explain.yaml").defaults:
        if not isinstance(entry, str) and "explainer" in entry:
            chosen = entry["explainer"]
            return str(chosen if isinstance(chosen, str) else chosen[0])
    raise PredictError(f"{CONFIGS / 'explain.yaml'} names no default explainer; pass method=<name>")


def method_params(name: str) -> dict:
    """The parameters of ``configs/explainer/<name>.yaml``.

    Raises
    ------
    PredictError
        No such file; the message lists the methods there are.
    """
    from omegaconf import OmegaConf

    path = EXPLAINERS / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in EXPLAINERS.glob("*.yaml")))
        raise PredictError(f"method={name}: no such explanation method; expected one of {known}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def method_analyzer(method: ChosenMethod, model, training: TrainingCohort):
    """The method's analyzer on ``model``, a named reference (``youngest_mean`` …) resolved on the
    training split of ``training``'s run, as explain resolves it."""
    params = method.params
    named = [params[k] for k in REFERENCE_KEYS if isinstance(params.get(k), str)]
    if named:
        prep = training.get(f"the reference {named[0]!r} of method {method.name} (an image of "
                            "the training split; method=dtd needs none)")
        params = with_reference_images({method.name: params}, prep)[method.name]
    return load_analyzers(model, {method.name: params})[method.name]

"""The scorecard's checks against issue #19's goals: pass, fail or not measured, per row.

Each check reads the scorecard's columns and the thresholds in ``scorecard:`` of
``configs/evaluate.yaml`` (:class:`~brainage.faithfulness.settings.ScorecardSettings`):

=================  ==========================================================================
``randomisation``  ``rand_spearman_<step> ≤ max_rand_spearman`` (0.5 after ``dense1``)
``class_maps``     ``class_map_correlation ≤ max_class_map_correlation`` (0.3)
``aopc``           ``aopc + aopc_within_se · aopc_se ≥`` the best AOPC of the scorecard
                   (the random floor excluded): within one SE of the best
``localisation``   ``loc_auc ≥ min_loc_auc`` (0.75) and ``control_ratio ≤ max_control_ratio`` (1)
                   where a control region exists
``conservation``   ``conservation_error ≤ max_conservation_error`` (1e-5); a method without a
                   conservation identity (NaN) does not meet it
=================  ==========================================================================

A check whose number is missing (disabled, no ground truth) is *not measured* (``<NA>``) and is
not met. ``goals_met`` counts the checks passed; ``verdict`` says ``pass`` when all five are, else
which fail and which were not measured. The random floor's rows are marked ``floor``.

A check that has no meaning for the scored model (``not_applicable``: the class maps of an age
regressor, which has one output) is neither: its ``pass_<check>`` is ``n/a``, it is left out of
``goals_met``, ``goals_measured`` and the verdict, so the row's goals are out of the other checks.

A check that is *void* for the scored model (``void``: localisation of a planted signal the model
did not learn, :mod:`~brainage.faithfulness.model_skill`) keeps its numbers but is neither met nor
failed: ``pass_<check>`` is ``<NA>``, it counts as a goal not met, and the verdict says
``void: <check>``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

CHECKS = ("randomisation", "class_maps", "aopc", "localisation", "conservation")
FLOOR = "random"
NOT_APPLICABLE = "n/a"  # pass_<check> of a check without meaning for the model


def _where(measured: pd.Series, passed: pd.Series) -> pd.Series:
    """A nullable boolean: ``passed`` where ``measured``, ``<NA>`` elsewhere."""
    out = pd.Series(pd.array(passed.to_numpy(dtype=bool), dtype="boolean"), index=passed.index)
    out[~measured.to_numpy(dtype=bool)] = pd.NA
    return out


def check_results(card: pd.DataFrame, settings) -> dict:
    """``{check: nullable boolean Series}`` for every row of ``card`` (floor rows included)."""
    rand = card[f"rand_spearman_{settings.randomisation_step}"]
    scored = card[card["method"] != FLOOR]["aopc"]
    best = scored.max() if scored.notna().any() else np.nan
    reach = card["aopc"] + settings.aopc_within_se * card["aopc_se"].fillna(0.0)
    control_ok = card["control_ratio"].isna() | (card["control_ratio"] <= settings.max_control_ratio)
    conservation = card["conservation_error"]
    return {
        "randomisation": _where(rand.notna(), rand <= settings.max_rand_spearman),
        "class_maps": _where(card["class_map_correlation"].notna(),
                             card["class_map_correlation"] <= settings.max_class_map_correlation),
        "aopc": _where(card["aopc"].notna(), reach >= best),
        "localisation": _where(card["loc_auc"].notna(),
                               (card["loc_auc"] >= settings.min_loc_auc) & control_ok),
        # No identity (NaN) is a definite "not met", not a measurement that is missing.
        "conservation": _where(card["conservation_n"].notna(),
                               conservation.fillna(np.inf) <= settings.max_conservation_error),
    }


def apply_checks(card: pd.DataFrame, settings, not_applicable=(), void=()) -> pd.DataFrame:
    """``card`` with ``pass_<check>`` columns, ``goals_met``, ``goals_measured`` and ``verdict``.

    ``not_applicable`` names checks without meaning for the model (e.g. ``("class_maps",)`` for
    an age regressor): their ``pass_<check>`` is ``n/a`` and they count nowhere. ``void`` names
    checks the model cannot be judged on (its numbers stand, its result is ``<NA>``).
    """
    for what, names in (("not_applicable", not_applicable), ("void", void)):
        unknown = [name for name in names if name not in CHECKS]
        if unknown:
            raise ValueError(f"{what}: {unknown} are not checks; checks: {list(CHECKS)}")
    card = card.copy()
    results = check_results(card, settings)
    floor = (card["method"] == FLOOR).to_numpy()
    for name, passed in results.items():
        passed[floor | (name in void)] = pd.NA
        card[f"pass_{name}"] = NOT_APPLICABLE if name in not_applicable else passed
    table = pd.DataFrame({name: passed for name, passed in results.items()
                          if name not in not_applicable})
    card["goals_met"] = table.eq(True).sum(axis=1).to_numpy()
    card["goals_measured"] = table.notna().sum(axis=1).to_numpy()
    card["verdict"] = [row_verdict(dict(zip(table.columns, values)), is_floor, void)
                       for values, is_floor in zip(table.itertuples(index=False), floor)]
    return card


def row_verdict(passed: dict, floor: bool = False, void=()) -> str:
    """``pass``, ``floor``, or ``fails: …; void: …; not measured: …`` from one row's check
    results (``void``: the checks void for the model)."""
    if floor:
        return "floor"
    failed = [name for name, value in passed.items() if value is not pd.NA and not value]
    voided = [name for name in passed if name in void]
    missing = [name for name, value in passed.items() if value is pd.NA and name not in void]
    if not failed and not missing and not voided:
        return "pass"
    parts = ([f"fails: {', '.join(failed)}"] if failed else []) + \
        ([f"void: {', '.join(voided)}"] if voided else []) + \
        ([f"not measured: {', '.join(missing)}"] if missing else [])
    return "; ".join(parts)

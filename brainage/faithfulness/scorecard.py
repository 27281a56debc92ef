"""The faithfulness scorecard: one row per (method, target mode), every check's number side by side.

``scorecard.csv`` columns (means over the scored subjects, ``_se`` their standard errors, ``_n``
how many subjects entered):

==============================  =====================================================================
``method, target, explainer``   the explainer's config key, the target mode, its registry name
``aopc``                        region perturbation, MoRF, mean baseline (higher = more faithful)
``rand_spearman_<step>``        Spearman of |map| with the trained network's after randomising down
                                to ``<step>`` (``dense1`` by default; low = the map needs the weights)
``rand_spearman_<step>_signed``  mean |Spearman| of the signed maps (1: the signed pattern
                                survives, up to a sign that follows the randomised output;
                                Binder et al. 2023: |map| similarity can stay high for methods
                                that multiply by the input)
``rand_ssim_<step>``            SSIM of |map| over the 3-D volume after ``<step>``
``rand_spearman_all``           … after randomising every layer
``class_map_correlation``       mean |Pearson r| of the youngest- and oldest-class maps of the same
                                subjects (low = class-discriminative); ``_signed``: the mean r;
                                ``_undefined``: subjects where a map was constant (r undefined)
``loc_auc, loc_mass_ratio``     ground-truth localisation (synthetic cohort): AUC, relevance mass ratio
``control_ratio``               the mass ratio in the regions the generator left unchanged (≤ 1 right)
``conservation_error``          the worst ``|ΣR − explained| / |explained|`` over the subjects (NaN:
                                the method has no conservation identity); ``_median`` beside it
==============================  =====================================================================

A measure that did not run (disabled, no ground truth, the random floor's randomisation) is NaN.
The checks against the goals are added by :mod:`brainage.faithfulness.checks`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

PAIR = ["method", "target"]


def build_scorecard(pairs: list, results: dict, explainers: dict, step: str) -> pd.DataFrame:
    """The scorecard of ``pairs`` (``[(method, target)]``, in row order) from the summary tables.

    Parameters
    ----------
    pairs : list of (str, str)
    results : dict
        The evaluate stage's summaries by name (``aopc``, ``randomisation``, ``class_maps``,
        ``localisation``, ``conservation``); missing ones give NaN columns.
    explainers : dict
        ``{method: parameters}`` (the registry name is ``parameters["name"]``).
    step : str
        The cascade step of ``rand_spearman_<step>``.
    """
    card = pd.DataFrame(pairs, columns=PAIR)
    card.insert(2, "explainer", [explainers.get(m, {}).get("name", m) for m in card["method"]])
    parts = [
        _columns(results.get("aopc"), {"aopc": "aopc", "se": "aopc_se", "n": "aopc_n"}),
        *_randomisation_columns(results.get("randomisation"), step),
        _columns(results.get("class_maps"), {
            "abs_pearson_r": "class_map_correlation", "abs_pearson_r_se": "class_map_correlation_se",
            "pearson_r": "class_map_correlation_signed", "n": "class_map_n",
            "undefined": "class_map_undefined"}),
        _columns(_overall(results.get("localisation")), {
            "auc": "loc_auc", "auc_se": "loc_auc_se", "mass_ratio": "loc_mass_ratio",
            "mass_ratio_se": "loc_mass_ratio_se", "control_ratio": "control_ratio",
            "control_ratio_se": "control_ratio_se", "n": "loc_n"}),
        _columns(results.get("conservation"), {
            "max": "conservation_error", "median": "conservation_error_median",
            "n": "conservation_n"}),
    ]
    for part in parts:
        card = card.merge(part, on=PAIR, how="left")
    return card


def _columns(table: pd.DataFrame | None, names: dict) -> pd.DataFrame:
    """``names``' columns of ``table`` renamed, keyed by the pair; all-NaN when it did not run."""
    if table is None:
        return pd.DataFrame(columns=[*PAIR, *names.values()])
    present = {k: v for k, v in names.items() if k in table}
    out = table[[*PAIR, *present]].rename(columns=present)
    for column in names.values():
        if column not in out:
            out[column] = np.nan
    return out[[*PAIR, *names.values()]]


def _overall(localisation: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if localisation is None else localisation[localisation["bin"] == "all"]


def _randomisation_columns(table: pd.DataFrame | None, step: str) -> list:
    """``rand_spearman_<step>`` and ``rand_spearman_all`` (|map|, mean ± SE, n)."""
    at, last = f"rand_spearman_{step}", "rand_spearman_all"
    names = {"spearman_abs": at, "spearman_abs_se": f"{at}_se", "n": "rand_n",
             "spearman_signed_magnitude": f"{at}_signed",
             "spearman_signed_magnitude_se": f"{at}_signed_se",
             "ssim_abs": f"rand_ssim_{step}"}
    if table is None:
        return [_columns(None, names), _columns(None, {"a": last, "b": f"{last}_se"})]
    final = table.groupby(PAIR, sort=False)["step"].transform("max") == table["step"]
    return [
        _columns(table[table["layer"] == step], names),
        _columns(table[final], {"spearman_abs": last, "spearman_abs_se": f"{last}_se"}),
    ]

"""The evaluate stage's tables: per-subject results summarised as mean ± SE, ranked, written as CSV.

``perturbation.csv`` (per method and step), ``aopc.csv`` (ranked, against the random floor),
``randomisation.csv`` (per method and cascade step), ``localisation.csv`` (per method, overall and
per age bin), each beside its per-subject table; ``subjects.csv`` and ``gradcam_layers.csv``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainage.faithfulness.scoring import RANDOM, Evaluation
from brainage.faithfulness.statistics import mean_se_table


def write_tables(work: Path, evaluation: Evaluation) -> dict:
    """Write every table of ``evaluation`` into ``work``; returns the summaries by name."""
    evaluation.inputs.subjects.to_csv(work / "subjects.csv", index=False)
    results = {}
    if evaluation.curves:
        results["perturbation"] = perturbation_summary(pd.concat(evaluation.curves, ignore_index=True))
        aopc = pd.DataFrame(evaluation.aopc)
        aopc.to_csv(work / "aopc_subjects.csv", index=False)
        results["aopc"] = aopc_ranking(aopc)
    if not evaluation.randomisation.empty:
        evaluation.randomisation.to_csv(work / "randomisation_subjects.csv", index=False)
        results["randomisation"] = randomisation_summary(evaluation.randomisation)
    if evaluation.localisation:
        per_subject = pd.concat(evaluation.localisation, ignore_index=True)
        per_subject.to_csv(work / "localisation_subjects.csv", index=False)
        results["localisation"] = localisation_summary(per_subject)
    if not evaluation.gradcam_layers.empty:
        results["gradcam_layers"] = evaluation.gradcam_layers
    for name, table in results.items():
        table.to_csv(work / f"{name}.csv", index=False)
    return results


def perturbation_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Per method and step: share removed, mean drop of the logit ± SE, mean logit, n."""
    table = mean_se_table(curves, ["method", "step"], ["drop", "fraction_removed", "logit"])
    table = table.rename(columns={"drop": "mean_drop", "drop_se": "se_drop", "logit": "mean_logit"})
    return table[["method", "step", "fraction_removed", "mean_drop", "se_drop", "mean_logit", "n"]]


def aopc_ranking(per_subject: pd.DataFrame) -> pd.DataFrame:
    """AOPC ± SE per method, ranked; with a random floor, the difference and whether it is > 2 SE."""
    aopc = mean_se_table(per_subject, ["method"], ["aopc"]).rename(columns={"aopc_se": "se"})
    aopc = aopc[["method", "aopc", "se", "n"]].sort_values("aopc", ascending=False, ignore_index=True)
    aopc.insert(0, "rank", np.arange(1, len(aopc) + 1))
    if RANDOM in set(aopc["method"]):
        floor = aopc.set_index("method").loc[RANDOM]
        aopc["minus_random"] = aopc["aopc"] - floor["aopc"]
        aopc["above_random"] = aopc["minus_random"] > 2 * np.sqrt(aopc["se"] ** 2 + floor["se"] ** 2)
    return aopc


def randomisation_summary(per_subject: pd.DataFrame) -> pd.DataFrame:
    """Per method and cascade step: mean ± SE of every similarity (Spearman, SSIM) and n."""
    keys = ["method", "step", "layer", "n_layers"]
    metrics = [c for c in per_subject.columns if c.startswith(("spearman_", "ssim_"))]
    table = mean_se_table(per_subject, keys, metrics)
    first = metrics[:1]
    pairs = [c for m in metrics[1:] for c in (m, f"{m}_se")]
    return table[[*keys, *(c for m in first for c in (m, f"{m}_se")), "n", *pairs]]


def localisation_summary(per_subject: pd.DataFrame) -> pd.DataFrame:
    """Per method, over all subjects (``bin`` = ``all``) and per age bin: mean ± SE of each score."""
    metrics = [c for c in ("mass_ratio", "auc", "control_ratio", "brain_share") if c in per_subject]
    parts = []
    for _, g in per_subject.groupby("method", sort=False):
        by_bin = g.sort_values("bin", kind="stable").assign(bin=lambda t: t["bin"].astype(str))
        parts += [mean_se_table(g.assign(bin="all"), ["method", "bin"], metrics),
                  mean_se_table(by_bin, ["method", "bin"], metrics)]
    table = pd.concat(parts, ignore_index=True)
    table.insert(3, "mask_share", float(per_subject["mask_share"].iloc[0]))
    return table

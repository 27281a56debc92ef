"""The evaluate stage's tables: per-subject results summarised as mean ± SE, ranked, written as CSV.

``perturbation.csv`` (per pair and step), ``aopc.csv`` (ranked, against the random floor of the same
target mode), ``randomisation.csv`` (per pair and cascade step), ``localisation.csv`` (per pair,
overall and per age bin), ``conservation.csv`` and ``class_maps.csv`` (per pair), each beside its
per-subject table; ``subjects.csv`` and ``gradcam_layers.csv``. A pair is a ``method`` and a
``target`` mode, the first two columns of every table.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainage.faithfulness.scoring import RANDOM, Evaluation
from brainage.faithfulness.statistics import mean_se_table

PAIR = ["method", "target"]


def write_tables(work: Path, evaluation: Evaluation) -> dict:
    """Write every table of ``evaluation`` into ``work``; returns the summaries by name."""
    evaluation.inputs.subjects.to_csv(work / "subjects.csv", index=False)
    results = {}
    if evaluation.curves:
        results["perturbation"] = perturbation_summary(pd.concat(evaluation.curves, ignore_index=True))
        aopc = pd.concat(evaluation.aopc, ignore_index=True)
        aopc.to_csv(work / "aopc_subjects.csv", index=False)
        results["aopc"] = aopc_ranking(aopc)
    if not evaluation.randomisation.empty:
        evaluation.randomisation.to_csv(work / "randomisation_subjects.csv", index=False)
        results["randomisation"] = randomisation_summary(evaluation.randomisation)
    for name, parts, summarise in (("localisation", evaluation.localisation, localisation_summary),
                                   ("conservation", evaluation.conservation, conservation_summary),
                                   ("class_maps", evaluation.class_maps, class_map_summary)):
        if parts:
            per_subject = pd.concat(parts, ignore_index=True)
            per_subject.to_csv(work / f"{name}_subjects.csv", index=False)
            results[name] = summarise(per_subject)
    if not evaluation.gradcam_layers.empty:
        results["gradcam_layers"] = evaluation.gradcam_layers
    for name, table in results.items():
        table.to_csv(work / f"{name}.csv", index=False)
    return results


def perturbation_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Per pair and step: share removed, mean drop of the logit ± SE, mean logit, n."""
    table = mean_se_table(curves, [*PAIR, "step"], ["drop", "fraction_removed", "logit"])
    table = table.rename(columns={"drop": "mean_drop", "drop_se": "se_drop", "logit": "mean_logit"})
    return table[[*PAIR, "step", "fraction_removed", "mean_drop", "se_drop", "mean_logit", "n"]]


def aopc_ranking(per_subject: pd.DataFrame) -> pd.DataFrame:
    """AOPC ± SE per pair, ranked; with a random floor of the pair's target mode, the difference
    and whether it is > 2 SE."""
    aopc = mean_se_table(per_subject, PAIR, ["aopc"]).rename(columns={"aopc_se": "se"})
    aopc = aopc[[*PAIR, "aopc", "se", "n"]].sort_values("aopc", ascending=False, ignore_index=True)
    aopc.insert(0, "rank", np.arange(1, len(aopc) + 1))
    floors = aopc[aopc["method"] == RANDOM].set_index("target")
    if len(floors):
        floor = floors.reindex(aopc["target"])
        aopc["minus_random"] = aopc["aopc"].to_numpy() - floor["aopc"].to_numpy()
        spread = np.sqrt(aopc["se"].to_numpy() ** 2 + floor["se"].to_numpy() ** 2)
        aopc["above_random"] = aopc["minus_random"].to_numpy() > 2 * spread
    return aopc


def randomisation_summary(per_subject: pd.DataFrame) -> pd.DataFrame:
    """Per pair and cascade step: mean ± SE of every similarity (Spearman, SSIM) and n.

    With signed maps it adds ``spearman_signed_magnitude``, the mean of each subject's
    |Spearman| of the signed maps: a map whose signed pattern survives but flips its sign with
    the randomised output (DTD's, rooted in the sign of the logit) has Spearman ±1 per subject,
    whose mean says nothing; its magnitude says the pattern is unchanged.
    """
    keys = [*PAIR, "step", "layer", "n_layers"]
    if "spearman_signed" in per_subject:
        per_subject = per_subject.assign(
            spearman_signed_magnitude=per_subject["spearman_signed"].abs())
    metrics = [c for c in per_subject.columns if c.startswith(("spearman_", "ssim_"))]
    table = mean_se_table(per_subject, keys, metrics)
    first = metrics[:1]
    pairs = [c for m in metrics[1:] for c in (m, f"{m}_se")]
    return table[[*keys, *(c for m in first for c in (m, f"{m}_se")), "n", *pairs]]


def localisation_summary(per_subject: pd.DataFrame) -> pd.DataFrame:
    """Per pair, over all subjects (``bin`` = ``all``) and per age bin: mean ± SE of each score."""
    metrics = [c for c in ("mass_ratio", "auc", "control_ratio", "brain_share") if c in per_subject]
    parts = []
    for _, g in per_subject.groupby(PAIR, sort=False):
        by_bin = g.sort_values("bin", kind="stable").assign(bin=lambda t: t["bin"].astype(str))
        parts += [mean_se_table(g.assign(bin="all"), [*PAIR, "bin"], metrics),
                  mean_se_table(by_bin, [*PAIR, "bin"], metrics)]
    table = pd.concat(parts, ignore_index=True)
    table.insert(4, "mask_share", float(per_subject["mask_share"].iloc[0]))
    return table


def conservation_summary(per_subject: pd.DataFrame) -> pd.DataFrame:
    """Per pair: the worst (``max``), median and mean conservation error and n (NaN: no identity)."""
    grouped = per_subject.groupby(PAIR, sort=False)["conservation_error"]
    return grouped.agg(max="max", median="median", mean="mean", n="count").reset_index()


def class_map_summary(per_subject: pd.DataFrame) -> pd.DataFrame:
    """Per pair: mean ± SE of |r| and of r between the youngest- and oldest-class maps, n, and
    ``undefined``: subjects where a map was constant (e.g. all zero), so r is undefined."""
    table = mean_se_table(per_subject, PAIR, ["abs_pearson_r", "pearson_r"])
    grouped = per_subject.groupby(PAIR, sort=False)
    table.insert(2, "classes", grouped["classes"].first().to_numpy())
    table["undefined"] = grouped["pearson_r"].apply(lambda r: int(r.isna().sum())).to_numpy()
    return table

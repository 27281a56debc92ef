"""The infer run directory's files: statistic maps, region tables, figures, checks, summary, report.

Layout (all under the run directory, written in a hidden work folder first):
``maps/<method>_<contrast>_t.nii.gz``, ``…_logp_fwe.nii.gz`` (+ ``…_tfce``, ``…_logp_fwe_tfce``),
``regions/<atlas>_inference.csv``, ``figures/*.png``, ``null_check.csv`` and ``null_rates.csv``
(with ``null_check.shuffles``), ``sensitivity.csv`` (synthetic cohorts), ``report.html``; the stage
writes the returned summary last as ``infer.json``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainage.inference.ground_truth import ground_truth_regions, sensitivity
from brainage.inference.member_agreement import AGREEING, ensemble_summary
from brainage.inference.null_check import null_rates
from brainage.inference.stat_maps import write_voxel_maps
from brainage.reporting.inference_report import glass_brain, region_effects, write_report
from brainage.runs.scorecards import faithfulness_status

FIGURES, MAPS, REGIONS = "figures", "maps", "regions"


def _finite(value):
    """JSON has no infinity: an impossible threshold becomes null."""
    value = float(value)
    return value if np.isfinite(value) else None


def _voxel_outputs(ctx, data, voxel, work: Path, stem: str) -> tuple:
    alpha = ctx.alpha_fwe
    paths = write_voxel_maps(voxel, data.mask, ctx.reference, work / MAPS, stem, alpha)
    n_sig = voxel.n_significant(alpha)
    png = work / FIGURES / f"{stem}_glass_brain.png"
    what = f"{n_sig} FWE-significant voxels" if n_sig else "no FWE-significant voxel (strongest shown)"
    glass_brain(paths["t"], f"{data.method}: t, {ctx.design.name} — {what}", png)
    summary = {"n_voxels": int(data.mask.sum()), "t_threshold": _finite(voxel.t_threshold),
               "max_abs_t": float(np.max(np.abs(voxel.t), initial=0.0)), "n_significant": n_sig,
               "df": voxel.df, "maps": {k: str(p.relative_to(work)) for k, p in paths.items()}}
    if voxel.logp_fwe_tfce is not None:
        summary["n_significant_tfce"] = int((voxel.logp_fwe_tfce >= -np.log10(alpha) - 1e-12).sum())
    caption = (f"{data.method}: voxel-wise t of {ctx.design.name}, thresholded at the FWE "
               f"threshold (glass brain; {what})")
    return summary, (caption, png.relative_to(work))


def write_method_outputs(ctx, data, voxel, tables: dict, work: Path) -> dict:
    """One method's maps and figures; its region tables get ``method`` and ``contrast`` columns.

    Returns ``{"voxelwise": summary or None, "regions": {atlas: table}, "figures": [...]}``.
    """
    s, name = ctx.settings, ctx.design.name
    stem = f"{data.method}_{name}"
    (work / FIGURES).mkdir(exist_ok=True)
    out = {"voxelwise": None, "regions": {}, "figures": []}
    if voxel is not None:
        out["voxelwise"], figure = _voxel_outputs(ctx, data, voxel, work, stem)
        out["figures"].append(figure)
    for atlas, table in tables.items():
        table = table.copy()
        table.insert(0, "contrast", name)
        table.insert(0, "method", data.method)
        for suffix in ("", "_adj"):
            if f"p_fwe{suffix}" in table:
                table[f"significant{suffix}"] = table[f"p_fwe{suffix}"] <= ctx.alpha_fwe
        png = work / FIGURES / f"{stem}_{atlas}_regions.png"
        region_effects(table, s.regions.top_k, ctx.alpha_fwe, f"{data.method}, {atlas}: {name}",
                       png)
        out["figures"].append((f"{data.method}: top {s.regions.top_k} {atlas} regions of {name}, "
                               "raw and GM-adjusted", png.relative_to(work)))
        out["regions"][atlas] = table
    return out


def _region_summary(table: pd.DataFrame, alpha: float, top_k: int) -> dict:
    out = {"n_regions": int(len(table)), "fwe_significant": int(table["significant"].sum()),
           "fdr_significant": int((table["p_fdr"] <= alpha).sum()),
           "top": table["region"].head(top_k).tolist()}
    if "significant_adj" in table:
        out["fwe_significant_adj"] = int(table["significant_adj"].sum())
    for suffix in ("", "_adj"):  # an ensemble's run: members agreeing on each significant region
        if f"{AGREEING}{suffix}" in table:
            significant = table[table[f"significant{suffix}"]]
            out[f"{AGREEING}{suffix}"] = {str(region): int(n) for region, n in zip(
                significant["region"], significant[f"{AGREEING}{suffix}"])}
    return out


def _write_tables(results: dict, work: Path, alpha: float, top_k: int) -> tuple:
    (work / REGIONS).mkdir(exist_ok=True)
    tables, summary = {}, {}
    for method, result in results.items():
        for atlas, table in result["regions"].items():
            tables.setdefault(atlas, []).append(table)
            summary.setdefault(atlas, {})[method] = _region_summary(table, alpha, top_k)
    tables = {atlas: pd.concat(parts, ignore_index=True) for atlas, parts in tables.items()}
    for atlas, table in tables.items():
        table.to_csv(work / REGIONS / f"{atlas}_inference.csv", index=False)
    return tables, summary


def _checks(ctx, tables: dict, nulls, work: Path) -> tuple:
    """Null rates (with shuffles) and sensitivity (with a ground truth), written as CSV."""
    rates = None
    if nulls is not None:
        nulls.to_csv(work / "null_check.csv", index=False)
        rates = null_rates(nulls, ctx.alpha_fwe)
        rates.to_csv(work / "null_rates.csv", index=False)
    truth = ground_truth_regions(ctx.train_cfg)
    found = None
    if truth is not None:
        parts = [sensitivity(t, truth, ctx.alpha_fwe).assign(atlas=a) for a, t in tables.items()]
        found = pd.concat(parts, ignore_index=True) if parts else None
        found = found[found["n_ageing"] > 0] if found is not None else None
        if found is not None and len(found):
            found.to_csv(work / "sensitivity.csv", index=False)
    return rates, found


def _regression_summary(ctx) -> dict:
    """An age regressor's predictions and the stored correction (nothing for a classifier)."""
    if ctx.predictions is None:
        return {}
    table = ctx.predictions
    return {"task": "regression", "predictions": "predictions.csv",
            "gap_correction": ctx.correction.summary(),
            "mae_subjects": float((table["predicted_age"] - table["age"]).abs().mean())}


def finish_run(ctx, results: dict, nulls, work: Path, seconds: float) -> dict:
    """Region tables, checks, faithfulness status and ``report.html``; returns the summary."""
    import nilearn


    s = ctx.settings
    tables, region_summary = _write_tables(results, work, s.alpha, s.regions.top_k)
    rates, found = _checks(ctx, tables, nulls, work)
    status, evaluate_dir = faithfulness_status(ctx.run.train_dir, s.outputs_dir, ctx.methods)
    summary = {
        "explain_dir": str(ctx.run.dir), "train_dir": str(ctx.run.train_dir),
        "methods": ctx.methods, "target": ctx.run.primary_target, "measure": s.measure,
        "design": ctx.design.summary(),
        "subjects": list(ctx.subjects["subject_id"]),
        "covariates": {"columns": ctx.covariates.columns, "notes": ctx.covariates.notes},
        "alpha": s.alpha, "fwe_scope": s.fwe_scope, "n_families": ctx.n_families,
        "alpha_fwe": ctx.alpha_fwe, "seed": s.seed, "tfce": s.voxelwise.tfce,
        "n_perm": {"voxels": s.voxelwise.n_perm, "regions": s.regions.n_perm},
        "gm_adjusted": s.regions.gm_adjust,
        "voxelwise": {m: r["voxelwise"] for m, r in results.items() if r["voxelwise"]},
        "regions": region_summary,
        "faithfulness": status, "evaluate_dir": str(evaluate_dir) if evaluate_dir else None,
        "null_check": None if rates is None else rates.to_dict(orient="records"),
        "sensitivity": None if found is None else found.to_dict(orient="records"),
        "nilearn": nilearn.__version__, "seconds": seconds,
        **_regression_summary(ctx),
        **ensemble_summary(ctx),
    }
    figures = [f for r in results.values() for f in r["figures"]]
    write_report(work, summary, tables, figures, s.regions.top_k, rates, found)
    return summary

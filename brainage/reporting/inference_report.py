"""Figures and ``report.html`` of the infer stage (group inference on relevance maps).

Takes plain tables, paths and a summary dict (nothing from :mod:`brainage.inference`), draws with
:class:`matplotlib.figure.Figure` objects (no pyplot state, no backend switch).
"""
from __future__ import annotations

import html
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

SIGNIFICANT = "#b2182b"
NOT_SIGNIFICANT = "#777777"


def glass_brain(t_map_path, title: str, out_png) -> Path:
    """Glass brain of a t map, thresholded at its ``cal_min`` (the FWE threshold |t|)."""
    import nibabel as nib
    from matplotlib.figure import Figure
    from nilearn import plotting

    img = nib.load(str(t_map_path))
    threshold = float(img.header["cal_min"])
    vmax = max(float(img.header["cal_max"]), threshold + 1e-6)
    fig = Figure(figsize=(9, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "empty mask")  # nothing above threshold: an empty brain
        plotting.plot_glass_brain(img, axes=ax, threshold=threshold, vmax=vmax, plot_abs=False,
                                  cmap="cold_hot", colorbar=True, title=title, black_bg=False)
    fig.savefig(out_png, dpi=90)
    return Path(out_png)


def region_effects(table: pd.DataFrame, top_k: int, alpha: float, title: str, out_png) -> Path:
    """Forest plot of the ``top_k`` regions: effect and 95 % interval, raw and GM-adjusted."""
    from matplotlib.figure import Figure

    top = table.head(top_k).iloc[::-1]
    rows = np.arange(len(top))
    fig = Figure(figsize=(8, 0.38 * max(len(top), 2) + 1.6))
    ax = fig.add_subplot(1, 1, 1)
    series = [("", -0.15, "o", "raw")]
    if "effect_adj" in top:
        series.append(("_adj", 0.15, "s", "GM-adjusted"))
    for suffix, offset, marker, label in series:
        significant = (top[f"p_fwe{suffix}"] <= alpha).to_numpy()
        effect = top[f"effect{suffix}"].to_numpy()
        err = np.vstack([effect - top[f"effect_lo{suffix}"], top[f"effect_hi{suffix}"] - effect])
        for flag, colour in ((True, SIGNIFICANT), (False, NOT_SIGNIFICANT)):
            pick = significant == flag
            ax.errorbar(effect[pick], rows[pick] + offset, xerr=err[:, pick], fmt=marker,
                        color=colour, capsize=2, label=f"{label}{'' if flag else ' (n.s.)'}")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(rows, top["region"])
    kind = str(table["effect_kind"].iloc[0]) if len(table) else ""
    ax.set_xlabel(("Hedges' g" if kind == "hedges_g" else "partial r") + " with 95 % interval; "
                  f"red: p(FWE) ≤ {alpha:g}")
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    keep = {label: h for h, label in zip(handles, labels)}
    ax.legend(keep.values(), keep.keys(), fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    return Path(out_png)


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="tbl",
                      na_rep="–")


def _interval(effect, lo, hi) -> list:
    return [f"{e:.2f} [{a:.2f}, {b:.2f}]" if np.isfinite(e) else "–"
            for e, a, b in zip(effect, lo, hi)]


def top_regions_table(table: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """The report's view of an inference table: the ``top_k`` rows, effects with intervals."""
    top = table.head(top_k)
    out = pd.DataFrame({"region": top["region"], "n_voxels": top["n_voxels"],
                        "effect [95% CI]": _interval(top["effect"], top["effect_lo"], top["effect_hi"]),
                        "t": top["t"], "p": top["p"], "p_fdr": top["p_fdr"],
                        "p_fwe": top["p_fwe"]})
    if "effect_adj" in top:
        out["GM-adjusted effect [95% CI]"] = _interval(top["effect_adj"], top["effect_lo_adj"],
                                                       top["effect_hi_adj"])
        out["p_fwe (GM-adj.)"] = top["p_fwe_adj"].to_numpy()
        out["r(relevance, GM)"] = top["gm_r"].to_numpy()
    for suffix, name in (("", "members agreeing"), ("_adj", "members agreeing (GM-adj.)")):
        if f"members_agreeing{suffix}" in top:  # an ensemble's run
            out[name] = [f"{int(n)}/{int(k)}" for n, k in zip(top[f"members_agreeing{suffix}"],
                                                              top["n_members"])]
    return out


def significance_text(summary: dict) -> str:
    """How significance is declared, in one sentence."""
    if summary["fwe_scope"] == "run":
        return (f"FWE-significant means p(FWE) ≤ {summary['alpha_fwe']:.3g}: alpha "
                f"{summary['alpha']:g} split (Bonferroni) over the run's {summary['n_families']} "
                "FWE families (each method's voxels and atlas regions, raw and GM-adjusted), so "
                f"the chance of any false FWE claim in this report is at most {summary['alpha']:g}.")
    return (f"FWE-significant means p(FWE) ≤ {summary['alpha']:g} within each of the run's "
            f"{summary['n_families']} FWE families (fwe_scope=family): the chance of a false claim "
            "somewhere in the report is larger.")


def _header(summary: dict) -> list:
    d = summary["design"]
    sizes = ", ".join(f"{k}: {v}" for k, v in d["n"].items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in summary["covariates"]["notes"])
    return [
        "<h1>Group inference on relevance maps</h1>",
        f"<p>Explain run: <code>{html.escape(summary['explain_dir'])}</code><br>"
        f"Training run: <code>{html.escape(summary['train_dir'])}</code><br>"
        f"Contrast <b>{html.escape(d['name'])}</b> ({html.escape(d['kind'])}; {sizes}): "
        f"{html.escape(d['description'])}.<br>"
        f"Relevance measure: <b>{html.escape(summary['measure'])}</b> of each subject's "
        f"{html.escape(str(summary['target']))} map. Covariates: "
        f"{html.escape(', '.join(summary['covariates']['columns']) or 'none')} (and an intercept)."
        f"</p>" + (f"<ul>{notes}</ul>" if notes else ""),
        f"<p><b>{html.escape(significance_text(summary))}</b></p>",
        *_regression_lines(summary),
    ]


def _regression_lines(summary: dict) -> list:
    """An age regressor's predictions and the correction they use (nothing for a classifier)."""
    if summary.get("task") != "regression":
        return []
    gap = summary["gap_correction"]
    how = ("corrected by the training run's bias correction, fitted on its validation split "
           f"(<code>{html.escape(gap['from'])}</code>)" if gap["correction"] else
           f"uncorrected: the training run has no bias correction ({html.escape(str(gap['problem']))})")
    return [f"<p>Age regression: predicted age and brain-age gap of the tested subjects in "
            f"<code>predictions.csv</code> (MAE {summary['mae_subjects']:.2f} years), the gap "
            f"{how}.</p>"]


def _methods_section(summary: dict) -> list:
    rows = [{"method": m, "faithfulness": s} for m, s in summary["faithfulness"].items()]
    source = summary.get("evaluate_dir")
    where = (f"from the evaluate run <code>{html.escape(source)}</code> (verdict.md there)"
             if source else "no evaluate run of this training run was found, so: not scored")
    return ["<h2>Which maps were tested</h2>",
            f"<p>The maps of {html.escape(', '.join(summary['methods']))} were tested. "
            f"Faithfulness scorecard: {where}. A method that failed it explains the network "
            "poorly; group differences in its maps say little about the network.</p>",
            _table_html(pd.DataFrame(rows))]


def _voxel_section(summary: dict) -> list:
    voxels = summary.get("voxelwise") or {}
    if not voxels:
        return ["<h2>Voxel-wise</h2><p>Not run (voxelwise.enabled=false).</p>"]
    rows = [{"method": m, "voxels tested": v["n_voxels"], "FWE threshold |t|": v["t_threshold"],
             "max |t|": v["max_abs_t"], "FWE-significant voxels": v["n_significant"],
             "t map": v["maps"]["t"], "−log10 p(FWE) map": v["maps"]["logp_fwe"]}
            for m, v in voxels.items()]
    return ["<h2>Voxel-wise (permutation FWE)</h2>",
            f"<p>{summary['n_perm']['voxels']} permutations, two-sided max-|t| (nilearn "
            "<code>permuted_ols</code>); TFCE: "
            f"{'yes' if summary['tfce'] else 'no'}. The maps open in any viewer at their display "
            "range (cal_min = the FWE threshold at the level above).</p>", _table_html(pd.DataFrame(rows))]


def _region_section(summary: dict, region_tables: dict, top_k: int) -> list:
    parts = ["<h2>Regions</h2>",
             f"<p>Per atlas region: Hedges' g (two groups) or partial r (regressor) with an "
             f"analytic 95 % interval, t, p (t distribution), p_fdr (Benjamini–Hochberg over the "
             f"atlas's regions), p_fwe (max-|t| over regions, {summary['n_perm']['regions']} "
             "permutations); again with the region's GM density as a covariate. Relevance shares "
             "are compositional: a share gained in one region is lost elsewhere. Full tables: "
             "<code>regions/&lt;atlas&gt;_inference.csv</code>.</p>"]
    parts += _ensemble_lines(summary)
    for atlas, table in region_tables.items():
        for method, sub in table.groupby("method", sort=False):
            parts += [f"<h3>{html.escape(atlas)} — {html.escape(method)}: top {top_k}</h3>",
                      _table_html(top_regions_table(sub, top_k))]
    return parts


def _agreeing_text(agreeing: dict, n_members: int) -> str:
    if not agreeing:
        return "none FWE-significant"
    return ", ".join(f"{html.escape(region)} {n}/{n_members}" for region, n in agreeing.items())


def _ensemble_lines(summary: dict) -> list:
    """An ensemble's run: how the members' agreement is counted, and on each significant region
    of each method and atlas, in how many members it holds (nothing for one model's run)."""
    ensemble = summary.get("ensemble")
    if ensemble is None:
        return []
    n = ensemble["n_members"]
    items = []
    for atlas, methods in summary["regions"].items():
        for method, result in methods.items():
            if "members_agreeing" not in result:
                continue
            line = f"raw: {_agreeing_text(result['members_agreeing'], n)}"
            if "members_agreeing_adj" in result:
                line += f"; GM-adjusted: {_agreeing_text(result['members_agreeing_adj'], n)}"
            items.append(f"<li>{html.escape(atlas)} — {html.escape(method)}: {line}</li>")
    skipped = ", ".join(ensemble["not_counted"])
    return ["<h3>Ensemble: members agreeing on each significant region</h3>",
            f"<p>The explain run is an ensemble of {n} members; its maps, tested above, are the "
            f"members' mean. For each region of {html.escape(', '.join(ensemble['counted_atlases']))}"
            " the same test (design, covariates, GM adjustment, permutations, seed) ran on each "
            "member's own region relevance (<code>regions/&lt;atlas&gt;_members.csv</code> of the "
            "explain run); <i>members agreeing</i> counts the members in which the region is "
            "FWE-significant at the level above with the ensemble's sign of t. Voxel-wise results"
            + (f" and the atlas{'es' if len(ensemble['not_counted']) > 1 else ''} "
               f"{html.escape(skipped)}" if skipped else "")
            + " have no count: the explain run writes no member's own maps.</p>",
            f"<ul>{''.join(items)}</ul>" if items else ""]


def write_report(work, summary: dict, region_tables: dict, figures: list, top_k: int,
                 null_rates: pd.DataFrame | None = None,
                 sensitivity: pd.DataFrame | None = None) -> Path:
    """``report.html`` beside the figures (``figures``: ``(caption, relative path)`` pairs)."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>brainage infer report"
             "</title><style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "img{max-width:100%;border:1px solid #ccc}.tbl{border-collapse:collapse;font-size:90%}"
             ".tbl td,.tbl th{padding:2px 8px;border-bottom:1px solid #ddd}</style></head><body>"]
    parts += _header(summary) + _methods_section(summary) + _voxel_section(summary)
    parts += _region_section(summary, region_tables, top_k)
    if sensitivity is not None and len(sensitivity):
        parts += ["<h2>Sensitivity against the synthetic ground truth</h2>",
                  "<p>Share of the generator's ageing regions found FWE-significant. A control "
                  "region found (GM unchanged by the generator) means relevance differs where the "
                  "anatomy does not: the maps do not localise the ageing — or they explain "
                  "different classes in the two groups (explain one class, targets=[k], to "
                  "compare like with like). Error control itself is what the null check shows."
                  "</p>",
                  _table_html(sensitivity)]
    if null_rates is not None and len(null_rates):
        parts += ["<h2>Null check: shuffled labels</h2>",
                  f"<p>{int(null_rates['shuffles'].max())} shuffles of the tested variable; rate = "
                  "share of shuffles with any FWE-significant voxel or region at the level above, "
                  "per family, per method and over the run (row any/any), with a 95 % "
                  "Clopper–Pearson interval.</p>",
                  _table_html(null_rates)]
    parts.append("<h2>Figures</h2>")
    for caption, rel in figures:
        parts.append(f"<figure><img src='{html.escape(str(rel))}' alt='{html.escape(caption)}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    out = Path(work) / "report.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out

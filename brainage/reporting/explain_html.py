"""The explain stage's ``report.html``: self-contained apart from the files beside it; opens offline.

An ensemble's report (``train_dirs=[…]``) adds a section naming the members and the reliability
(ICC) of regional relevance across them, from ``explain.json``'s ``ensemble`` and ``reliability``
(:func:`brainage.explaining.ensemble_regions.write_region_reliability`); a single run's has none.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.neuro.nifti import DisplayRange
from brainage.reporting.explain_figures import relevance_cmap

STYLE = ("<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
         "img{max-width:100%;border:1px solid #ccc}.tbl{border-collapse:collapse;font-size:90%}"
         ".tbl td,.tbl th{padding:2px 8px;border-bottom:1px solid #ddd}"
         "</style>")
# nilearn's page template names its favicon on GitHub: dropped, so nothing is fetched.
_REMOTE_ICON = re.compile(r"<link\s+rel=[\"']icon[\"'][^>]*https?://[^>]*>", re.IGNORECASE)


def table_html(df: pd.DataFrame, floatfmt="{:.4g}") -> str:
    return df.to_html(index=False, float_format=lambda v: floatfmt.format(v), border=0,
                      classes="tbl")


def write_html(work: Path, summary: dict, figures: list, conservation: pd.DataFrame,
               region_summary: pd.DataFrame, group_paths: dict, subjects: pd.DataFrame,
               traces: list, viewer: list) -> Path:
    """Write ``work/report.html`` (and a standalone static page per group map); returns its path.

    ``viewer`` is the interactive viewer's section (:func:`brainage.reporting.viewer.viewer_html`).
    """
    viewers = group_viewers(work, group_paths)
    top = region_summary[region_summary["rank"].notna() & (region_summary["rank"] <= 5)]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>brainage explain report</title>",
        STYLE + "</head><body>", "<h1>Relevance report</h1>", run_paragraph(summary, subjects),
        *ensemble_section(summary), *viewer,
        "<h3>Static group-map pages</h3><p>nilearn pages, one per group map, under "
        "the same display range; they need no WebGL.</p>", viewers_html(viewers),
        "<h2>Conservation</h2><p>Relevance should sum to the explained logit; rel_error = "
        "|ΣR − logit| / |logit|.</p>", table_html(conservation_table(conservation)),
        "<h2>Figures</h2>", *figures_html(figures),
        "<h2>Top regions per bin</h2>",
        table_html(top[["method", "bin", "rank", "region", "mean_share", "sd_share",
                        "n_subjects"]]),
        "<h2>Subjects</h2>", table_html(subjects), *traces_html(traces), "</body></html>"]
    out = work / "report.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def ensemble_section(summary: dict) -> list:
    """The report's "Ensemble" section (HTML parts); empty for a single training run."""
    members, reliability = summary.get("ensemble"), summary.get("reliability")
    if not members or not reliability:
        return []
    dirs = ", ".join(f"<code>{html.escape(str(d))}</code>" for d in members["train_dirs"])
    top_k, min_icc = reliability["top_k"], reliability["min_icc"]
    parts = [
        "<h2>Ensemble</h2>",
        f"<p>{members['n_members']} members: {dirs}. Each map is {html.escape(members['explains'])}"
        ".</p>",
        f"<p>Reliability of regional relevance across members: {html.escape(reliability['icc'])}"
        f"; each region rated by {html.escape(reliability['rating'])}. The findings count as "
        f"reliable when the ICC over the ensemble's top {top_k} regions reaches "
        f"ensemble.min_icc = {min_icc:g}.</p>",
        table_html(reliability_table(reliability), floatfmt="{:.3f}"),
        "<h3>Unreliable regions</h3>", unreliable_html(reliability),
    ]
    return parts


def reliability_table(reliability: dict) -> pd.DataFrame:
    """One row per method: the ICC and 95 % CI over all regions and over the top k, and whether
    the top k's ICC meets ``min_icc``."""
    top_k, min_icc = reliability["top_k"], reliability["min_icc"]
    rows = []
    for method, entry in reliability["methods"].items():
        every, top = entry["all_regions"], entry["top_k"]
        rows.append({
            "method": method,
            "ICC, all regions": _number(every["icc"]), "95 % CI (all)": _interval(every["ci95"]),
            "regions": "–" if every["n_regions"] is None else every["n_regions"],
            f"ICC, top {top_k}": _number(top["icc"]), f"95 % CI (top {top_k})":
                _interval(top["ci95"]),
            f"meets ICC ≥ {min_icc:g}": "yes" if entry["meets_min_icc"] else "no",
            f"top {top_k} regions": ", ".join(entry["top_k_regions"]),
        })
    return pd.DataFrame(rows)


def unreliable_html(reliability: dict) -> str:
    """Per method, the top regions whose relevance is not reliable across members, with why."""
    items = []
    for method, entry in reliability["methods"].items():
        found = entry["unreliable_regions"]
        if not found:
            items.append(f"<li><b>{html.escape(method)}</b>: none</li>")
            continue
        regions = "".join(f"<li>{html.escape(u['region'])}: {html.escape(u['reason'])}</li>"
                          for u in found)
        items.append(f"<li><b>{html.escape(method)}</b>:<ul>{regions}</ul></li>")
    return f"<ul>{''.join(items)}</ul>"


def _number(value) -> str:
    return "–" if value is None or value != value else f"{value:.3f}"


def _interval(ci) -> str:
    if not ci or any(v is None or v != v for v in ci):
        return "–"
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def group_viewers(work: Path, group_paths: dict) -> list:
    """A nilearn page per group map, ``group/<method>_<group>_viewer.html`` beside
    ``group/<method>_<group>_mean.nii.gz`` (``bin<k>``, or a regression's ``lowgap``/``highgap``),
    under its header range."""
    import nibabel as nib
    from nilearn import plotting


    viewers = []
    for (method, _), path in sorted(group_paths.items()):
        group = Path(path).name[len(method) + 1:].replace("_mean.nii.gz", "")
        img = nib.load(str(path))
        display = DisplayRange.of(img)
        view = plotting.view_img(img, threshold=display.cal_min or None,
                                 vmax=display.cal_max or None, cmap=relevance_cmap(img),
                                 symmetric_cmap=display.signed, title=f"{method} {group}",
                                 black_bg=True)
        name = f"group/{method}_{group}_viewer.html"
        (work / name).write_text(_REMOTE_ICON.sub("", view.get_standalone()), encoding="utf-8")
        viewers.append((f"{method}, {group.replace('bin', 'bin ')}", name))
    return viewers


def run_paragraph(summary: dict, subjects: pd.DataFrame) -> str:
    if "predicted_age" in subjects:  # a regression run
        mae = float((subjects["predicted_age"] - subjects["age"]).abs().mean())
        quality = f"MAE {mae:.2f} years"
    else:
        acc = (float((subjects["predicted"] == subjects["bin"]).mean()) if len(subjects)
               else float("nan"))
        quality = f"{acc:.0%} classified correctly"
    return (f"<p>Training run: <code>{html.escape(summary['train_dir'])}</code><br>"
            f"Methods: {html.escape(', '.join(summary['methods']))}; targets: "
            f"{html.escape(', '.join(map(str, summary['targets'])))}; atlas: "
            f"{html.escape(summary['atlas'])}<br>"
            f"{summary['n_subjects']} subjects explained ({quality}), "
            f"{summary['n_maps']} maps, {summary['seconds']} s.</p>" + checks_paragraph(summary))


def checks_paragraph(summary: dict) -> str:
    """Each method's faithfulness checks (from an evaluate run of the same model), failures first."""
    checks = summary.get("checks") or {}
    if not checks:
        return ""
    items = sorted(checks.items(), key=lambda kv: (kv[1] == "passed", kv[1] == "not scored"))
    rows = "".join(f"<li><b>{html.escape(m)}</b>: {html.escape(str(c))}</li>" for m, c in items)
    return ("<p>Faithfulness checks of each method (the newest <code>make evaluate</code> run of "
            "this model; \"not scored\" without one; a failing method's maps say so in their "
            f"NIfTI <code>descrip</code>):</p><ul>{rows}</ul>")


def conservation_table(conservation: pd.DataFrame) -> pd.DataFrame:
    return (conservation.groupby(["method", "target"])
            .agg(maps=("rel_error", "size"), median_rel_error=("rel_error", "median"),
                 max_rel_error=("rel_error", "max"), mean_negative_share=("negative_share", "mean"))
            .reset_index())


def figures_html(figures: list) -> list:
    return [f"<figure><img src='{html.escape(str(rel))}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, rel in figures]


def viewers_html(viewers: list) -> str:
    items = "".join(f"<li><a href='{html.escape(rel)}'>{html.escape(caption)}</a></li>"
                    for caption, rel in viewers)
    return f"<ul>{items}</ul>"


def traces_html(traces: list) -> list:
    """The first trace of each method: relevance sum entering each layer, per input."""
    if not traces:
        return []
    parts = ["<h2>Conservation trace (first batch)</h2><p>Relevance sum entering each "
             "layer, per input: where it changes, relevance leaks.</p>"]
    seen = set()
    for t in traces:
        if t["method"] in seen:
            continue
        seen.add(t["method"])
        rows = [{"layer": k, "relevance_sums": ", ".join(f"{v:.5g}" for v in np.ravel(vals))}
                for k, vals in t["trace"].items()]
        parts += [f"<h3>{html.escape(t['method'])}</h3>", table_html(pd.DataFrame(rows))]
    return parts

"""The evaluate stage's ``report.html``: the scorecard, the default choice, figures and the verdict.

Opens offline: figures are embedded (base64 PNG), so the file can be mailed or moved alone; a
summary over several models links each model's own report and shows their ensemble as one more
model beside the members' mean.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from brainage.reporting.scorecard_cells import (
    describe_skill,
    ensemble_notes,
    regression_notes,
    scorecard_cells,
    scorecard_step,
)

STYLE = ("<style>body{font-family:sans-serif;max-width:1250px;margin:auto;padding:1em}"
         "img{max-width:100%;border:1px solid #ccc}.tbl{border-collapse:collapse;font-size:88%}"
         ".tbl td,.tbl th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}"
         "pre{white-space:pre-wrap;background:#f6f6f6;padding:1em;font-size:85%}</style>")
FIGURES = (("scorecard.png", "Checks passed per pair"),
           ("perturbation.png", "Region perturbation: mean logit drop and AOPC"),
           ("randomisation.png", "Cascading randomisation"),
           ("localisation.png", "Localisation of the synthetic ground truth"),
           ("methods.png", "One subject's maps by method and Grad-CAM layer"))


def write_report(work: Path, summary: dict, card: pd.DataFrame, choice: str,
                 verdict_text: str, ensemble: pd.DataFrame | None = None) -> Path:
    """Write ``work/report.html``; returns its path (``ensemble``: several runs' ensemble beside
    its members, :func:`~brainage.reporting.scorecard_cells.ensemble_cells`)."""
    step = scorecard_step(card)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>brainage faithfulness scorecard</title>", STYLE, "</head><body>",
        "<h1>Is the explanation faithful?</h1>", _scope(summary), *_skill(summary),
        "<h2>Scorecard</h2>",
        scorecard_cells(card, step).to_html(index=False, border=0, classes="tbl", escape=True),
        *[f"<p>{html.escape(note)}</p>" for note in regression_notes(summary)],
        f"<p>{_markdown_bold(choice)}</p>", *_ensemble(summary, ensemble), *_figures(work),
        *_model_links(summary),
        "<h2>Verdict (verdict.md)</h2>", f"<pre>{html.escape(verdict_text)}</pre>",
        "</body></html>"]
    out = work / "report.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def _skill(summary: dict) -> list:
    """The model's test skill first, and a void localisation in bold (one model's report)."""
    skill = summary.get("model_skill")
    if not skill:
        return []
    parts = [f"<p>Model: {html.escape(describe_skill(skill))}.</p>"]
    if skill.get("void"):
        parts.append(f"<p><b>Localisation is void:</b> {html.escape(skill['void'])}.</p>")
    return parts


def _ensemble(summary: dict, cells: pd.DataFrame | None) -> list:
    """Several runs' ensemble as one more model: how it was scored (or why not), its cells."""
    entry = summary.get("ensemble")
    if entry is None:
        return []
    parts = ["<h2>The ensemble as one model</h2>",
             *[f"<p>{html.escape(note)}</p>" for note in ensemble_notes(entry)]]
    if cells is not None:
        parts.append(cells.to_html(index=False, border=0, classes="tbl", escape=True))
    return parts


def _scope(summary: dict) -> str:
    targets = ", ".join(map(str, summary.get("target", [])))
    methods = ", ".join(summary.get("methods", []))
    if "n_models" in summary:
        what = f"{summary['n_models']} training runs; mean ± SD over the models"
    elif "n_members" in summary:
        runs = ", ".join(f"<code>{html.escape(d)}</code>" for d in summary["train_dirs"])
        what = (f"the ensemble of {summary['n_members']} training runs ({runs}) as one model, "
                f"{summary['n_subjects']} subjects; mean ± SE over the subjects")
    else:
        what = (f"training run <code>{html.escape(str(summary['train_dir']))}</code>, "
                f"{summary['n_subjects']} subjects; mean ± SE over the subjects")
    return (f"<p>{what}.<br>Target modes: {html.escape(targets)}; methods: "
            f"{html.escape(methods)}. ✓ goal met, ✗ not met, – not measured.</p>")


def _figures(work: Path) -> list:
    """Every figure that exists, embedded."""
    parts = []
    for name, caption in FIGURES:
        path = work / "figures" / name
        if path.is_file():
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f"<figure><img src='data:image/png;base64,{data}' "
                         f"alt='{html.escape(caption)}'><figcaption>{html.escape(caption)}"
                         "</figcaption></figure>")
    return (["<h2>Figures</h2>"] + parts) if parts else []


def _model_links(summary: dict) -> list:
    models = summary.get("models")
    if not models:
        return []
    items = "".join(f"<li><a href='models/{html.escape(m['model'])}/report.html'>"
                    f"{html.escape(m['model'])}</a>: <code>{html.escape(m['train_dir'])}</code>"
                    "</li>" for m in models)
    return ["<h2>Models</h2>", f"<ul>{items}</ul>"]


def _markdown_bold(text: str) -> str:
    """``**x**`` as ``<b>x</b>``, everything else escaped."""
    pieces = html.escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(pieces))


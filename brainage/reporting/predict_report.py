"""``report.html`` of the predict stage: counts, accuracy where ages are known, predicted against
true age, the mean relevance map.

Takes the predictions table, the stage's summary and the mean map's path (nothing from
:mod:`brainage.predicting`); figures are :class:`matplotlib.figure.Figure` objects and nilearn
plots on them (no pyplot state).
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.data.bins import bin_labels
from brainage.reporting.canvas import new_figure, save
from brainage.reporting.explain_figures import group_comparison
from brainage.reporting.explain_html import STYLE, table_html

SPLIT_COLUMN = "in_training_split"
# Held-out subjects first and strongest: only they measure how well the model generalises.
GROUPS = (("", "held out", "C0"), ("test", "training run's test split", "C1"),
          ("val", "training run's validation split", "C2"),
          ("train", "training run's training split", "C7"))


def age_figure(predictions: pd.DataFrame, regression: bool, bin_edges, out_png) -> Path | None:
    """Predicted against true age (a regressor) or true age per predicted bin (a classifier),
    subjects of the training run's split in their own colours; None without a known age."""
    known = predictions[np.isfinite(predictions["age"].to_numpy(dtype=float))]
    if not len(known):
        return None
    fig, ax = new_figure(figsize=(5.5, 5))
    for flag, label, colour in GROUPS:
        rows = known[known[SPLIT_COLUMN] == flag]
        if len(rows):
            y = rows["predicted_age"] if regression else rows["predicted_bin"] + \
                np.random.default_rng(0).uniform(-0.15, 0.15, len(rows))
            ax.scatter(rows["age"], y, s=14, alpha=0.8, color=colour, label=f"{label} ({len(rows)})")
    if regression:
        ages = known["age"].to_numpy(dtype=float)
        low, high = float(ages.min()), float(ages.max())
        ax.plot([low, high], [low, high], color="grey", linestyle="--", label="identity")
        ax.set_ylabel("predicted age (years)")
    else:
        labels = bin_labels(bin_edges)
        ax.set_yticks(range(len(labels)), [f"{k}: {t}" for k, t in enumerate(labels)])
        for edge in bin_edges[1:-1]:
            ax.axvline(edge, color="grey", linestyle=":")
        ax.set_ylabel("predicted age bin")
    ax.set_xlabel("chronological age (years)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save(fig, out_png)


def write_report(work: Path, summary: dict, predictions: pd.DataFrame, mean_map: Path | None,
                 bin_edges) -> Path:
    """``work/report.html`` and its figures in ``work/figures``."""
    (work / "figures").mkdir(exist_ok=True)
    regression = summary["task"] == "regression"
    figures = []
    scatter = age_figure(predictions, regression, bin_edges, work / "figures" / "ages.png")
    if scatter is not None:
        figures.append(("Predicted against true age, where the age is known", scatter))
    if mean_map is not None:
        method = summary["maps"]["method"]
        out = group_comparison({0: mean_map}, [0], {0: "all subjects"}, method,
                               work / "figures" / f"mean_{method}.png")
        figures.append((f"{method}: mean relevance share over every predicted subject", out))
    parts = ["<!doctype html><html><head><meta charset='utf-8'>"
             "<title>brainage predict report</title>", STYLE + "</head><body>",
             "<h1>Predictions</h1>", _run_paragraph(summary),
             "<h2>Subjects</h2>", table_html(_counts(summary)),
             "<h2>Accuracy where the truth is known</h2>", _accuracy_html(summary),
             *_members_html(summary),
             *[f"<h3>{html.escape(caption)}</h3><img src='{path.relative_to(work)}'>"
               for caption, path in figures],
             "<h2>Predictions</h2><p>Every subject: <a href='predictions.csv'>predictions.csv"
             "</a>.</p>", table_html(predictions.head(50)), "</body></html>"]
    out = work / "report.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def _run_paragraph(summary: dict) -> str:
    maps = summary["maps"]
    what = ("no maps (maps=false)" if maps is None else
            f"{maps['n_maps']} relevance maps of <b>{html.escape(maps['method'])}</b>, chosen by "
            f"{html.escape(maps['chosen_by'])}")
    if "members" in summary:
        runs = ", ".join(f"<code>{html.escape(m['train_dir'])}</code>" for m in summary["members"])
        model = (f"An ensemble of {summary['n_members']} {html.escape(summary['task'])} models "
                 f"({runs}; the mean of their predictions and maps)")
    else:
        model = (f"The {html.escape(summary['task'])} model of <code>"
                 f"{html.escape(summary['train_dir'])}</code>")
    return (f"<p>{model} applied to the "
            f"{html.escape(summary['cohort'])}: {what}. Subjects of the training run's own split "
            f"are flagged in <code>{SPLIT_COLUMN}</code>; only the held-out ones measure how "
            "well the model generalises.</p>")


def _counts(summary: dict) -> pd.DataFrame:
    rows = [("predicted", summary["n_subjects"]), ("with an age", summary["n_with_age"]),
            ("without an age", summary["n_without_age"]),
            ("excluded (unusable image)", summary["n_excluded"]),
            ("held out (not in the training run's split)", summary["n_held_out"])]
    rows += [(f"in the training run's {split} split", n)
             for split, n in summary["in_training_split"].items()]
    return pd.DataFrame(rows, columns=["subjects", "n"])


def _accuracy_html(summary: dict) -> str:
    table = pd.DataFrame([{"subjects": name.replace("_", " "), **scores}
                          for name, scores in summary["accuracy"].items()])
    note = ""
    gap = summary.get("age_gap")
    if gap is not None and "members" in summary:
        note = (f"<p>Gaps are corrected with the members' corrections, fitted on "
                f"{html.escape(gap['fitted_on'])}: {html.escape(gap['combined'])}.</p>")
    elif gap is not None:
        note = ("<p>Gaps are corrected by the training run's own correction, fitted on its "
                f"validation split ({html.escape(gap['from'])}), never refitted here.</p>")
    return table_html(table) + note


def _members_html(summary: dict) -> list:
    """An ensemble's accuracy (or MAE) beside its median and best member's, and each member's."""
    if "members" not in summary:
        return []
    against = summary["against_members"]
    metric = against["metric"]
    rows = [{"model": "ensemble", metric: against["ensemble"]},
            {"model": "median member", metric: against["median_member"]},
            {"model": f"best member ({against['best_train_dir']})", metric: against["best_member"]}]
    rows += [{"model": m["train_dir"], metric: m["accuracy"]["all"][metric],
              "n": m["accuracy"]["all"]["n"]} for m in summary["members"]]
    return ["<h2>The ensemble against its members</h2><p>Over every subject with an age; a "
            "member's held-out subjects are in predict.json.</p>", table_html(pd.DataFrame(rows))]

"""The faithfulness scorecard as text cells: one row per scored pair, marks for passed checks.

Shared by ``verdict.md`` (Markdown) and the evaluate ``report.html``, so both show the same numbers
the same way: ``value ± spread`` (SE over subjects for one model, SD over models for a summary), ✓
for a passed check, ✗ for a failed one, – where it was not measured, and for a summary the number
of models that passed (``✓ 3/3``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MARKS = {True: "✓", False: "✗"}
# pass_<check> of a check without meaning for the model (brainage.faithfulness.checks): an age
# regressor's class maps. Shown as "n/a", counted neither as met nor as a goal.
NOT_APPLICABLE = "n/a"
CHECK_COUNT = 5


def applicable_goals(row) -> int:
    """How many of the five checks apply to a scorecard row (5, or 4 for an age regressor)."""
    return CHECK_COUNT - sum(1 for key, value in row.items()
                             if str(key).startswith("pass_") and isinstance(value, str)
                             and value == NOT_APPLICABLE)


def regression_notes(summary: dict) -> list:
    """Sentences under the scorecard of an age regressor (``summary["task"] == "regression"``):
    what is explained, the sign of AOPC, conservation, the checks that do not apply and the
    explainers skipped; none for a classifier."""
    if summary.get("task") != "regression":
        return []
    notes = [f"Regression run: every map explains the predicted {summary['explained_output']}. "
             "AOPC is in years: the mean drop of the predicted age as the most relevant patches "
             "are replaced first (positive relevance is evidence for an older brain, so a "
             "faithful map's removal lowers the prediction: higher is better). Conservation: "
             "relevance sums to the predicted age, or to the predicted age minus the "
             "reference's for reference-rooted methods."]
    notes += [f"{check.replace('_', ' ')}: n/a — {why}; goals are out of "
              f"{CHECK_COUNT - len(summary['not_applicable'])}."
              for check, why in summary["not_applicable"].items()]
    skipped = summary.get("skipped_methods") or {}
    if skipped:
        notes.append("Skipped (they need classes): " + "; ".join(
            f"{method} ({why})" for method, why in skipped.items()) + ".")
    return notes


def pair_labels(table: pd.DataFrame) -> pd.Series:
    """``method`` when the table holds one target mode, else ``method [target]``."""
    if "target" not in table or table["target"].nunique() <= 1:
        return table["method"].astype(str)
    return table["method"].astype(str) + " [" + table["target"].astype(str) + "]"


def _number(value, spread=None, digits=3, scientific=False) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:.1e}" if scientific else f"{value:.{digits}f}"
    if spread is not None and np.isfinite(spread):
        text += f" ± {spread:.1e}" if scientific else f" ± {spread:.{digits}f}"
    return text


def _mark(row, check: str | None) -> str:
    if check is None or f"pass_{check}" not in row:
        return ""
    value = row[f"pass_{check}"]
    if isinstance(value, str) and value == NOT_APPLICABLE:
        return " " + NOT_APPLICABLE
    mark = "–" if value is None or pd.isna(value) else MARKS[bool(value)]
    counted = row.get(f"pass_{check}_models")
    if counted is not None and pd.notna(counted) and pd.notna(row.get("n_models")):
        mark += f" {int(counted)}/{int(row['n_models'])}"
    return " " + mark


def scorecard_step(card: pd.DataFrame) -> str:
    """The cascade step of the scorecard's ``rand_spearman_<step>`` column (``dense1`` if none)."""
    names = [c[len("rand_spearman_"):] for c in card.columns if c.startswith("rand_spearman_")
             and not c.startswith("rand_spearman_all")
             and not c.endswith(("_se", "_sd", "_models", "_signed"))]
    return names[0] if names else "dense1"


def scorecard_columns(step: str) -> list:
    """``(header, value column, check)`` of the shown scorecard columns."""
    return [
        ("AOPC", "aopc", "aopc"),
        (f"Spearman after {step}", f"rand_spearman_{step}", "randomisation"),
        ("Spearman, all randomised", "rand_spearman_all", None),
        ("class-map |r|", "class_map_correlation", "class_maps"),
        ("GT AUC", "loc_auc", "localisation"),
        ("mass ratio", "loc_mass_ratio", None),
        ("control ratio", "control_ratio", None),
        ("conservation error", "conservation_error", "conservation"),
    ]


def scorecard_cells(card: pd.DataFrame, step: str) -> pd.DataFrame:
    """The scorecard as strings: ``pair``, one column per measure, ``goals``, ``verdict``.

    A summary over models (``n_models`` column) shows ± SD over models; a single model ± SE.
    """
    spread = "_sd" if "n_models" in card else "_se"
    rows = []
    for label, (_, row) in zip(pair_labels(card), card.iterrows()):
        cells = {"pair": label}
        for header, column, check in scorecard_columns(step):
            value = row.get(column)
            sd = row.get(f"{column}{spread}")
            if column == "conservation_error":
                text = _number(value, sd if spread == "_sd" else None, scientific=True)
                text = "no identity" if text == "–" and row["method"] != "random" else text
            else:
                text = _number(value, sd)
            mark = _mark(row, check) if row["verdict"] != "floor" else ""
            cells[header] = NOT_APPLICABLE if mark.strip() == NOT_APPLICABLE else text + mark
        cells["goals"] = ("" if row["verdict"] == "floor"
                          else f"{int(row['goals_met'])}/{applicable_goals(row)}")
        cells["verdict"] = row["verdict"]
        rows.append(cells)
    return pd.DataFrame(rows)


# The measures shown for an ensemble beside its members: AOPC, randomisation, AUC, conservation.
_BESIDE_MEMBERS = ("aopc", "rand_spearman_", "loc_auc", "conservation_error")


def ensemble_cells(ensemble: pd.DataFrame, members: pd.DataFrame, step: str) -> pd.DataFrame:
    """The ensemble's scorecard beside its members' (the summary's mean ± SD over the members),
    pair by pair: ``pair``, per measure ``ensemble (members mean ± SD)`` with the ensemble's mark,
    its verdict and the members' summary verdict."""
    theirs = {(str(m), str(t)): row for m, t, (_, row) in
              zip(members["method"], members["target"], members.iterrows())}
    shown = [c for c in scorecard_columns(step) if c[1].startswith(_BESIDE_MEMBERS)
             and c[1] != "rand_spearman_all"]
    rows = []
    for label, (_, row) in zip(pair_labels(ensemble), ensemble.iterrows()):
        other = theirs.get((str(row["method"]), str(row["target"])))
        cells = {"pair": label}
        for header, column, check in shown:
            scientific = column == "conservation_error"
            mark = _mark(row, check) if row["verdict"] != "floor" else ""
            mean = ("–" if other is None else
                    _number(other.get(column), other.get(f"{column}_sd"), scientific=scientific))
            cells[header] = f"{_number(row.get(column), scientific=scientific)}{mark} (members {mean})"
        cells["verdict"] = row["verdict"]
        cells["members' verdict"] = "–" if other is None else other["verdict"]
        rows.append(cells)
    return pd.DataFrame(rows)


def ensemble_notes(entry: dict) -> list:
    """Sentences on the ensemble scored as one more model (``evaluate.json``'s ``ensemble``):
    where it is and how it was scored, or why it was not."""
    if not entry.get("scored"):
        return [f"Not scored: {entry['reason']}."]
    notes = [f"The ensemble of the {entry['n_members']} runs, scored as one more model in "
             f"{entry['folder']}/ (its rows: scorecard_ensemble.csv): its map is the mean of the "
             "members' maps of its own class, region perturbation tracks the members' mean logit "
             "(or age), and each randomisation step re-initialises the same layers in every "
             "member. Each cell: the ensemble (members' mean ± SD).",
             f"Ensemble: {describe_skill(entry['model_skill'])}"
             + (f" ({entry['model_skill']['note']})" if entry["model_skill"].get("note") else "")
             + " (its members' test predictions combined)."]
    if not entry["same_subjects"]:
        notes.append("The members scored different subjects (their splits differ); the ensemble "
                     "was scored on the first member's.")
    notes += [f"Not scored for the ensemble: {check.replace('_', ' ')} — {why}."
              for check, why in entry["skipped_checks"].items()]
    return notes


def markdown_table(cells: pd.DataFrame) -> list:
    """Lines of a Markdown table of string cells (``|`` inside a cell escaped)."""
    def row(values):
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    return [row(cells.columns), "|" + "---|" * len(cells.columns),
            *(row(values) for values in cells.itertuples(index=False))]


def describe_skill(skill: dict) -> str:
    """A model's test skill (``evaluate.json``'s ``model_skill``) in words:
    ``test balanced accuracy 0.972 (95 % CI 0.858–0.995, 36 subjects)``."""
    if skill["value"] is None:
        return f"{skill['measure']} unknown"
    text = f"{skill['measure']} {skill['value']:.3f}"
    extra = [f"95 % CI {skill['ci95'][0]:.3f}–{skill['ci95'][1]:.3f}"] if skill["ci95"] else []
    extra += [f"{skill['n']} subjects"] if skill["n"] else []
    return text + (f" ({', '.join(extra)})" if extra else "")

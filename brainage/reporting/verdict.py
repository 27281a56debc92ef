"""``verdict.md``: the evaluate stage's findings in words — scorecard, ranking, failed checks.

Built from the summary the stage writes to ``evaluate.json``, its summary tables and the checked
scorecard; ``floor`` names the random-map floor, which is ranked but never called faithful. A table
holding several target modes names each pair ``method [target]``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from brainage.reporting.scorecard_cells import (
    describe_skill,
    ensemble_notes,
    markdown_table,
    pair_labels,
    regression_notes,
    scorecard_cells,
    scorecard_step,
)


def fmt(value, se=None, digits=3) -> str:
    """``0.123 ± 0.045``, ``0.123`` without an SE, ``–`` for a missing value."""
    if value is None or not np.isfinite(value):
        return "–"
    if se is None or not np.isfinite(se):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {se:.{digits}f}"


def verdict(summary: dict, results: dict, card: pd.DataFrame, choice: str, train_dir,
            floor: str) -> str:
    """The verdict as Markdown: the scorecard and the default choice, one section per check,
    then a summary."""
    lines = [
        "# Faithfulness verdict", "",
        f"{_scored_model(summary, train_dir)}; {summary['n_subjects']} subjects; target modes "
        f"{', '.join(summary['target'])}; methods: {', '.join(summary['methods'])}.", ""]
    lines += model_section(summary.get("model_skill"))
    lines += skipped_checks_section(summary)
    lines += scorecard_section(summary, card, choice)
    lines += perturbation_section(summary["perturbation"], results, floor)
    lines += randomisation_section(summary, results)
    lines += localisation_section(summary["localisation"], results)
    lines += (class_map_section(results) if "class_maps" not in summary.get("not_applicable", {})
              else ["", "## 4. Class maps: not applicable", "",
                    f"Not scored: {summary['not_applicable']['class_maps']}."])
    lines += gradcam_section(results)
    lines += summary_section(summary, results, floor)
    lines.append("")
    return "\n".join(lines)


def _scored_model(summary: dict, train_dir) -> str:
    """What was scored: a training run, or an ensemble of them as one model."""
    if "n_members" not in summary:
        return f"Training run `{train_dir}`"
    runs = ", ".join(f"`{d}`" for d in summary["train_dirs"])
    return (f"The ensemble of {summary['n_members']} training runs ({runs}) as one model: "
            f"{summary['ensemble_scoring']['explains']}; randomisation: "
            f"{summary['ensemble_scoring']['randomises']}")


def skipped_checks_section(summary: dict) -> list:
    """The checks not scored for this model (an ensemble's Grad-CAM layers), and why."""
    skipped = summary.get("skipped_checks") or {}
    return [f"Not scored: {check.replace('_', ' ')} — {why}." for check, why in skipped.items()] \
        + ([""] if skipped else [])


def ensemble_section(entry: dict | None, cells: pd.DataFrame | None) -> list:
    """Several runs' verdict: their ensemble as one more model beside the members' mean."""
    if entry is None:
        return []
    lines = ["", "## The ensemble as one model", "", *(f"- {note}" for note in ensemble_notes(entry))]
    if cells is not None:
        lines += [""] + markdown_table(cells)
    return lines


def model_section(skill: dict | None) -> list:
    """The model's own test skill, before any map is judged; a void localisation said loudly."""
    if not skill:
        return []
    note = f" ({skill['note']})" if skill.get("note") else ""
    lines = [f"Model: {describe_skill(skill)}{note}.", ""]
    if skill.get("void"):
        lines += [f"**Localisation is void:** {skill['void']}. Its numbers are written but "
                  "neither pass nor fail (`localisation.min_model_accuracy`, "
                  "`localisation.min_model_r2` in `configs/evaluate.yaml`).", ""]
    return lines


def perturbation_section(p: dict, results: dict, floor: str) -> list:
    lines = ["## 1. Region perturbation (Samek et al. 2017)", ""]
    if "aopc" not in results:
        return lines + ["Skipped (perturbation.enabled=false)."]
    aopc = results["aopc"]
    lines += [
        f"Patches of {p.get('patch')}³ voxels on the crop, removed most relevant first, "
        f"{p.get('patches_per_step')} per step for {p.get('steps')} steps (up to "
        f"{100 * results['perturbation']['fraction_removed'].max():.1f} % of the input), replaced "
        f"by the `{p.get('baseline')}` baseline. AOPC = mean drop of the explained logit over the "
        "steps (step 0 included): higher means the map ranks the patches the network uses first.",
        "", "| rank | method | AOPC ± SE | above random |", "|---|---|---|---|"]
    for label, (_, row) in zip(pair_labels(aopc), aopc.iterrows()):
        above = row.get("above_random")
        mark = "floor" if row["method"] == floor else ("yes" if above else "no") \
            if above is not None else "–"
        lines.append(f"| {row['rank']} | {label} | {fmt(row['aopc'], row['se'])} | {mark} |")
    below = [label for label, m, a in zip(pair_labels(aopc), aopc["method"],
                                          aopc.get("above_random", [])) if m != floor and not a]
    if below:
        lines += ["", f"Not clearly above the random floor (AOPC − random ≤ 2 SE): {', '.join(below)}."]
    return lines


def randomisation_section(summary: dict, results: dict) -> list:
    lines = ["", "## 2. Sanity check: cascading randomisation (Adebayo et al. 2018)", ""]
    if "randomisation" not in results:
        return lines + ["Skipped (randomisation.enabled=false)."]
    r, table = summary["randomisation"], results["randomisation"]
    last = table["step"].max()
    lines += [
        f"Weights re-initialised from the top ({' → '.join(r['cascade'])}, cumulative, "
        f"granularity {r.get('granularity')}) on {len(summary['randomisation_subjects'])} subjects; "
        "similarity of the absolute maps to the trained network's (Spearman over brain voxels, "
        "SSIM over the 3-D volume). A faithful map changes once the weights it explains are gone. "
        f"Flag: Spearman > {r.get('flag_spearman')} after randomising down to `{r['flag_after']}`.",
        "", f"| method | Spearman after `{r['flag_after']}` | \\|signed Spearman\\| after "
        f"`{r['flag_after']}` | Spearman, all randomised | SSIM, all randomised | verdict |",
        "|---|---|---|---|---|---|"]
    table = table.assign(label=pair_labels(table))
    for (method, target), g in table.groupby(["method", "target"], sort=False):
        at = g[g["layer"] == r["flag_after"]].iloc[0]
        end = g[g["step"] == last].iloc[0]
        flagged = f"{method}:{target}" in summary.get("flagged_pairs", {})
        outcome = "**fails** (map ignores the top layers)" if flagged else "passes"
        signed = fmt(at.get("spearman_signed_magnitude", np.nan),
                     at.get("spearman_signed_magnitude_se", np.nan))
        lines.append(f"| {at['label']} | {fmt(at['spearman_abs'], at['spearman_abs_se'])} | "
                     f"{signed} | {fmt(end['spearman_abs'])} | {fmt(end['ssim_abs'])} | "
                     f"{outcome} |")
    return lines + ["", "The random map is left out: it depends on no weight by construction. "
                    "The check reads |map|. Binder et al. (2023, CVPR) show that top-down "
                    "randomisation can penalise methods that multiply by the input (gradient × "
                    "input, LRP, DTD): their |map| keeps the input's structure whatever the "
                    "weights, so part of a high |map| Spearman is the input's, not the weights'. "
                    "The |signed Spearman| (each subject's |ρ| of the signed maps, averaged) "
                    "says whether the signed pattern survives; a map that only flips its sign "
                    "with the randomised output (DTD's) keeps |ρ| ≈ 1."]


def localisation_section(loc: dict, results: dict) -> list:
    lines = ["", "## 3. Localisation of the synthetic ground truth", ""]
    if "localisation" not in results:
        return lines + [f"Skipped: {loc['ground_truth_note']}."]
    table = results["localisation"]
    overall = table[table["bin"] == "all"].sort_values("mass_ratio", ascending=False)
    share = loc.get("mask_share")
    lines += [
        f"Mask: {loc['ground_truth_note']}; it covers {100 * share:.1f} % of the brain voxels "
        f"(cohort mean GM > {loc.get('brain_threshold')}), so a perfect map reaches a mass ratio "
        f"of {1 / share:.2f} and AUC 1; a uniform map 1 and 0.5. Scores use "
        f"{loc.get('relevance')} relevance. Control ratio: the same ratio in the regions the "
        "generator left unchanged (primary visual cortex; ≤ 1 is right).", "",
        "| method | mass ratio ± SE | AUC ± SE | control ratio | relevance in brain |",
        "|---|---|---|---|---|"]
    for label, (_, row) in zip(pair_labels(overall), overall.iterrows()):
        lines.append(f"| {label} | {fmt(row['mass_ratio'], row['mass_ratio_se'])} | "
                     f"{fmt(row['auc'], row['auc_se'])} | {fmt(row.get('control_ratio'))} | "
                     f"{fmt(row.get('brain_share'))} |")
    return lines + ["", "Per age bin: `localisation.csv`."]


def gradcam_section(results: dict) -> list:
    if "gradcam_layers" not in results:
        return []
    lines = ["", "## 5. Grad-CAM across layers (seed 002)", "",
             "Roughness = mean |∇map| / mean |map| in the brain (finer, more local detail is "
             "larger); focus = share of brain voxels holding half the relevance; "
             "between-subject Spearman = how alike the maps of different subjects are "
             "(more general is larger). `figures/methods.png` shows one subject's maps "
             "side by side.", "",
             "| layer | roughness | focus | between-subject Spearman |", "|---|---|---|---|"]
    for _, row in results["gradcam_layers"].iterrows():
        lines.append(f"| {row['layer']} | {fmt(row['roughness'])} | {fmt(row['focus'])} | "
                     f"{fmt(row['between_subject_spearman'])} |")
    return lines


def summary_section(summary: dict, results: dict, floor: str) -> list:
    lines = ["", "## Summary", ""]
    if "aopc" in results:
        aopc = results["aopc"]
        ranked = [label for label, m in zip(pair_labels(aopc), aopc["method"]) if m != floor]
        lines.append(f"- Most faithful by AOPC: **{ranked[0]}**; order: {' > '.join(ranked)}.")
    if "randomisation" in results:
        flagged = summary.get("flagged_pairs", {})
        lines.append("- Failed the randomisation check: " + (", ".join(
            f"{m} (Spearman {v:.2f})" for m, v in flagged.items()) if flagged else "none") + ".")
    if "localisation" in results:
        overall = results["localisation"]
        overall = overall[(overall["bin"] == "all") & (overall["method"] != floor)]
        best = overall.assign(label=pair_labels(overall)).sort_values("auc", ascending=False).iloc[0]
        truth = ("planted signal" if summary.get("localisation", {}).get("mask") == "planted"
                 else "ageing ground truth")
        lines.append(f"- Best localisation of the {truth}: **{best['label']}** "
                     f"(AUC {best['auc']:.3f}, mass ratio {best['mass_ratio']:.2f}).")
    return lines


def scorecard_section(summary: dict, card: pd.DataFrame, choice: str) -> list:
    """The scorecard table, the goals it is checked against and the default DTD variant."""
    goals = summary["scorecard"] if "scorecard" in summary else None
    step = goals["randomisation_step"] if goals else scorecard_step(card)
    lines = ["## Scorecard: five checks (thresholds in `configs/evaluate.yaml`, `scorecard:`)", ""]
    if goals:
        lines += [
            f"Goals: Spearman (|map|) after randomising down to `{step}` ≤ "
            f"{goals['max_rand_spearman']:g}; youngest- vs oldest-class maps |r| ≤ "
            f"{goals['max_class_map_correlation']:g}; AOPC within {goals['aopc_within_se']:g} SE "
            f"of the best; ground-truth AUC ≥ {goals['min_loc_auc']:g} with control ratio ≤ "
            f"{goals['max_control_ratio']:g}; conservation error ≤ "
            f"{goals['max_conservation_error']:.0e}. ✓ met, ✗ not met, – not measured; "
            "`scorecard.csv` holds every number, SE and n.", ""]
    lines += markdown_table(scorecard_cells(card, step))
    notes = regression_notes(summary)
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return lines + ["", choice, ""]


def class_map_section(results: dict) -> list:
    """Youngest- vs oldest-class maps: mean |r| and r per pair."""
    if "class_maps" not in results:
        return []
    table = results["class_maps"]
    lines = ["", "## 4. Class maps: youngest vs oldest bin", "",
             "The same subjects explained for the youngest and for the oldest class; Pearson r "
             "of the signed maps over the brain voxels. A map that is one pattern scaled by the "
             "output gives |r| ≈ 1 (r ≈ −1 when the logits differ in sign), so |r| is scored: "
             "low = class-discriminative. Where one of the two maps is constant (a method that "
             "gives an all-zero map for a class, e.g. z⁺ rules for a logit without positive "
             "inputs) r is undefined: counted, not scored.", "",
             "| pair | mean \\|r\\| ± SE | mean r | subjects | r undefined |",
             "|---|---|---|---|---|"]
    for label, (_, row) in zip(pair_labels(table), table.iterrows()):
        lines.append(f"| {label} | {fmt(row['abs_pearson_r'], row['abs_pearson_r_se'])} | "
                     f"{fmt(row['pearson_r'])} | {row['n']} | {row['undefined']} |")
    return lines


def summary_verdict(summary: dict, card: pd.DataFrame, choice: str, floor: str,
                    ensemble: pd.DataFrame | None = None) -> str:
    """The verdict of several models: the scorecard as mean ± SD over models, then their
    ensemble (``summary["ensemble"]``; ``ensemble``: its cells beside the members',
    :func:`~brainage.reporting.scorecard_cells.ensemble_cells`)."""
    models = "\n".join(f"- `{m['model']}`: training run `{m['train_dir']}`"
                       + (f", {describe_skill(m['model_skill'])}" if m.get("model_skill") else "")
                       + (" — **localisation void**" if (m.get("model_skill") or {}).get("void")
                          else "") + f" (models/{m['model']}/verdict.md)"
                       for m in summary["models"])
    lines = ["# Faithfulness verdict over several models", "",
             f"{summary['n_models']} independently trained models; target modes "
             f"{', '.join(summary['target'])}; methods: {', '.join(summary['methods'])}. Each "
             "number is the mean ± SD over the models (`scorecard_summary.csv`); the checks "
             "apply to the means, and each mark says how many models passed on their own.", "",
             models, ""]
    lines += markdown_table(scorecard_cells(card, scorecard_step(card)))
    notes = regression_notes(summary)
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    lines += ["", choice] + ensemble_section(summary.get("ensemble"), ensemble)
    return "\n".join(lines + [""])

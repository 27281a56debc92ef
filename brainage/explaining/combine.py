"""Combine parts into an explain run: tables, group maps, figures, report and summary.

One code path serves a single job (one part) and a merge of shards, so both write the same files:
rows in single-job order, group maps from the summed float64 partial sums. A regression run's
groups are its gap groups (``group/<method>_lowgap_mean.nii.gz``, ``..._highgap_...``; see
:mod:`brainage.explaining.age_groups`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.explaining.age_groups import GROUP_NAMES, gap_captions, gap_summary
from brainage.explaining.atlas_index import atlas_index
from brainage.explaining.method_checks import method_checks
from brainage.explaining.settings import ExplainSettings
from brainage.explaining.targets import class_tag, primary_tag
from brainage.neuro.nifti import MapLabel, display_range, grid_image, relevance_image, save_atomic
from brainage.neuro.regions import summarise_regions
from brainage.reporting.explain_figures import Overlay, bin_captions, make_figures
from brainage.reporting.explain_html import write_html
from brainage.reporting.viewer import ViewerAtlas, ViewerEntry, viewer_html
from brainage.trained import OpenedRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tables:
    """The combined tables of an explain run (rows in single-job order, no ``batch`` column)."""

    conservation: pd.DataFrame
    subjects: pd.DataFrame
    region_subjects: pd.DataFrame
    region_summary: pd.DataFrame


def combine_parts(settings: ExplainSettings, opened: OpenedRun, parts: list, work: Path, t0: float,
                  extra: dict | None = None) -> dict:
    """Write the run's files from ``parts`` (whose maps are in ``work/maps``); returns the summary."""
    for sub in ("maps", "group", "regions", "figures"):
        (work / sub).mkdir(exist_ok=True)
    tables = write_tables(parts, settings.atlas.name, work)
    group_sum, group_n = sum_groups(parts)
    mean_gm = mean_grey_matter(opened.prep.volumes, opened.rows)
    checks = method_checks(settings, opened)
    regression = opened.train.is_regression
    group_paths = write_group_maps(group_sum, group_n, opened.prep.grid, work,
                                   GroupLabels(settings, mean_gm, checks, regression))
    subject_overlays = overlays(settings, opened, tables.subjects, work)
    captions = gap_captions(tables.subjects) if regression else None
    figures = make_figures(work, opened.prep, list(settings.methods), subject_overlays,
                           group_paths, tables.region_summary, tables.conservation,
                           settings.atlas.name, settings.top_k, captions)
    summary = {**run_summary(settings, opened, tables, group_n, t0, extra), "checks": checks}
    traces = [{"method": t["method"], "trace": t["trace"]}
              for t in sorted((t for p in parts for t in p.traces), key=lambda t: t["batch"])]
    viewer = report_viewer(settings, opened, work, group_paths, group_n, subject_overlays,
                           mean_gm, captions)
    write_html(work, summary, figures, tables.conservation, tables.region_summary, group_paths,
               tables.subjects, traces, viewer)
    return summary


def in_batch_order(tables: list) -> pd.DataFrame:
    """Parts' rows concatenated in single-job order (stable sort on ``batch``), ``batch`` dropped."""
    table = pd.concat(tables, ignore_index=True)
    return table.sort_values("batch", kind="stable").drop(columns="batch").reset_index(drop=True)


def write_tables(parts: list, atlas_name: str, work: Path) -> Tables:
    """``conservation.csv``, ``subjects.csv`` and ``regions/<atlas>_{subjects,summary}.csv``."""
    region_subjects = in_batch_order([p.regions for p in parts])
    tables = Tables(conservation=in_batch_order([p.conservation for p in parts]),
                    subjects=in_batch_order([p.subjects for p in parts]),
                    region_subjects=region_subjects,
                    region_summary=summarise_regions(region_subjects))
    tables.conservation.to_csv(work / "conservation.csv", index=False)
    tables.subjects.to_csv(work / "subjects.csv", index=False)
    tables.region_subjects.to_csv(work / "regions" / f"{atlas_name}_subjects.csv", index=False)
    tables.region_summary.to_csv(work / "regions" / f"{atlas_name}_summary.csv", index=False)
    warn_empty_maps(tables.conservation)
    return tables


def warn_empty_maps(conservation: pd.DataFrame) -> dict:
    """Warn of, and return as ``{"method:target": [subject_id, ...]}``, the maps that sum to exactly
    zero where the explained output does not: all-zero maps, the method's rules having absorbed
    everything (e.g. z⁺ at a top layer where every input lowers the output: DTD of the age of a
    young subject whose active units all lower the predicted age)."""
    empty = conservation[(conservation["relevance_sum"] == 0) & (conservation["output"] != 0)]
    found = {f"{method}:{target}": sorted(group["subject_id"].astype(str))
             for (method, target), group in empty.groupby(["method", "target"], sort=False)}
    for pair, subjects in found.items():
        log.warning("%s gave an all-zero map for %d subject(s) (%s) whose explained output is not "
                    "zero: its rules passed nothing down (e.g. z+ at a top layer where every "
                    "input lowers the output); conservation.csv has rel_error 1 for them",
                    pair, len(subjects), ", ".join(subjects))
    return found


def sum_groups(parts: list) -> tuple[dict, dict]:
    """The parts' group sums and counts added up per ``(method, bin)``."""
    group_sum, group_n = {}, {}
    for part in parts:
        for key, acc in part.group_sum.items():
            group_sum[key] = group_sum.get(key, 0) + acc
            group_n[key] = group_n.get(key, 0) + part.group_n[key]
    return group_sum, group_n


def mean_grey_matter(volumes, rows, chunk: int = 32) -> np.ndarray:
    """The mean cropped GM volume of ``rows``: the anatomy under the group maps.

    Read in chunks, so a cohort cached as a memory map is never loaded whole.
    """
    total = np.zeros(volumes.shape[1:], dtype=np.float64)
    rows = np.asarray(rows)
    for start in range(0, len(rows), chunk):
        total += np.asarray(volumes[rows[start:start + chunk]], dtype=np.float64).sum(axis=0)
    return (total / max(len(rows), 1)).astype(np.float32)


@dataclass(frozen=True)
class GroupLabels:
    """What the group maps' headers need: the display rule, the brain, the target explained."""

    settings: ExplainSettings
    mean_gm: np.ndarray  # cropped: the explained subjects' mean GM
    checks: dict  # {method: faithfulness checks}
    regression: bool = False  # groups are gap groups, not age bins

    def group(self, k: int) -> str:
        """``bin<k>``, or a regression's ``lowgap`` / ``highgap``."""
        return GROUP_NAMES[int(k)] if self.regression else f"bin{k}"

    @property
    def target(self) -> str:
        spec = self.settings.targets[0]
        return "predicted" if spec == "all" else class_tag(spec)


def write_group_maps(group_sum: dict, group_n: dict, grid, work: Path, labels: GroupLabels) -> dict:
    """``group/<method>_bin<k>_mean.nii.gz`` (or ``_lowgap_``/``_highgap_``): the mean normalised
    map; returns their paths.

    The display range is taken over the explained subjects' mean GM above the rule's threshold.
    """
    rule = labels.settings.display
    brain = rule.brain_mask(labels.mean_gm)
    paths = {}
    for (name, k), acc in sorted(group_sum.items()):
        n = group_n[(name, k)]
        mean = grid.crop((acc / n).astype(np.float32))
        group = labels.group(k)
        label = MapLabel(name, labels.target, checks=labels.checks[name],
                         what=f"{group} mean share n={n}")
        img = relevance_image(mean, grid, None, label, display_range(mean, brain, rule))
        paths[(name, k)] = save_atomic(img, work / "group" / f"{name}_{group}_mean.nii.gz")
    return paths


def overlays(settings: ExplainSettings, opened: OpenedRun, subjects: pd.DataFrame, work: Path) -> list:
    """The primary map of each explained subject that gets an overlay figure.

    Ordered by method, bin and subject; ``settings.figure_subjects`` subjects per method (all
    when None).
    """
    spec = settings.targets[0]
    row_of = {sid: i for i, sid in enumerate(opened.prep.table["subject_id"])}
    ordered = subjects.sort_values(["bin", "subject_id"], kind="stable")
    per_method = len(ordered) if settings.figure_subjects is None else settings.figure_subjects
    chosen = list(ordered[["subject_id", "bin", "predicted"]].head(per_method)
                  .itertuples(index=False))
    return [Overlay(method, int(k), sid,
                    work / "maps" / f"{sid}_{method}_{primary_tag(spec, predicted)}.nii.gz",
                    opened.image_path(row_of[sid]), row_of[sid])
            for method in settings.methods for sid, k, predicted in chosen]


def run_summary(settings: ExplainSettings, opened: OpenedRun, tables: Tables, group_n: dict, t0: float,
                extra: dict | None) -> dict:
    """What ``explain.json`` records about the run."""
    conservation = tables.conservation
    regression = opened.train.is_regression
    labels = GroupLabels(settings, np.zeros(0), checks={}, regression=regression)
    if regression:
        extra = {**gap_summary(tables.subjects), **(extra or {})}
    return {
        "train_dir": str(opened.train.dir), "model_path": str(opened.train.model_path),
        "methods": settings.methods, "targets": list(settings.targets),
        "atlas": settings.atlas.name,
        "n_subjects": int(len(tables.subjects)), "n_maps": int(len(conservation)),
        "task": opened.train.task,
        "group_counts": {f"{n}_{labels.group(k)}": v for (n, k), v in sorted(group_n.items())},
        "max_rel_error": {m: float(g["rel_error"].max()) for m, g in conservation.groupby("method")},
        "seconds": round(time.perf_counter() - t0, 1),
        **(extra or {}),
    }


def report_viewer(settings: ExplainSettings, opened: OpenedRun, work: Path, group_paths: dict,
                  group_n: dict, subject_overlays: list, mean_gm: np.ndarray,
                  captions: dict | None = None) -> list:
    """The report's interactive viewer: every group map, then each overlay subject's map."""
    grid, labels = opened.prep.grid, captions or bin_captions(opened.prep.bin_edges)
    mean_img = grid_image(grid, mean_gm)
    entries = [ViewerEntry("Group maps", f"{method}: {labels[k]}, mean of {group_n[(method, k)]}",
                           path, mean_img, "mean-gm")
               for (method, k), path in sorted(group_paths.items())]
    for o in subject_overlays:
        image = o.image_path if o.image_path and Path(o.image_path).is_file() else \
            grid_image(grid, opened.prep.volumes[o.row])
        entries.append(ViewerEntry("Subjects", f"{o.subject_id} ({labels[o.bin]}): {o.method}",
                                   o.map_path, image, f"gm-{o.subject_id}"))
    index = atlas_index(settings.atlas, grid)
    note = f"the strongest {100 - settings.display.low_percentile:g} % of brain voxels"
    return viewer_html(work, entries, ViewerAtlas(index.ids, grid.affine, index.names), note)

"""Explain batches of subjects: a NIfTI map per subject, method and target, plus a :class:`Part`.

A batch is read once (volumes, labels, the subjects' image headers, the predicted classes); each
method explains it once per target; each class slice of an explanation becomes one map file per
subject and one conservation row; each subject's primary map also goes into the region table and
its bin's group sum. For a regression run the "bins" of groups and region tables are the gap
groups of :mod:`brainage.explaining.age_groups` (0 low, 1 high corrected gap).

An ensemble (:mod:`brainage.ensemble.one_model`) goes through the same code as one model:
its explanation's map is the members' mean; beside each of its maps go the members' SD and sign
agreement (``<subject>_<method>_<tag>_sd.nii.gz``, ``..._agreement.nii.gz``), and beside each
primary map's region rows each member's own.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from brainage.data.reference_images import with_reference_images
from brainage.ensemble.combine import MapSpread
from brainage.ensemble.one_model import EnsembleAnalyzer
from brainage.ensemble.spread_maps import AGREEMENT_RANGE, agreement_tag, sd_tag
from brainage.explaining.age_groups import GapGroups, gap_groups
from brainage.explaining.atlas_index import AtlasIndex, atlas_index
from brainage.explaining.ensemble_regions import member_region_rows
from brainage.explaining.method_checks import method_checks
from brainage.explaining.parts import Part, PartBuilder
from brainage.explaining.settings import ExplainSettings
from brainage.explaining.targets import map_tags, primary_tag
from brainage.neuro.nifti import MapLabel, display_range, reference_header, relevance_image, save_atomic
from brainage.trained import OpenedRun, load_analyzers, load_model


def batch_rows(rows: np.ndarray, batch_size: int) -> list:
    """The selected rows cut into the batches a single job explains, in order."""
    return [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]


@dataclass(frozen=True)
class BatchContext:
    """What stays fixed while batches are explained."""

    settings: ExplainSettings
    opened: OpenedRun
    atlas: AtlasIndex
    maps_dir: Path
    checks: dict  # {method: faithfulness checks}, for each map's descrip
    groups: GapGroups | None = None  # a regression run's gap groups
    source: str = ""  # who made the maps, for their descrip (default: the training run's name)


@dataclass(frozen=True)
class Explainer:
    """What explains the batches: a model (or an ensemble's
    :class:`~brainage.ensemble.one_model.EnsembleModel`), its analyzer per method, a
    regression's gap groups, and how the maps' ``descrip`` names their source ("" the run)."""

    model: object
    analyzers: dict
    groups: GapGroups | None = None
    source: str = ""


@dataclass(frozen=True)
class Batch:
    """One batch read for explaining: inputs, true and predicted bins, each subject's header.

    For a regression: ``bins`` and ``predicted`` are both the gap group, and ``predicted_age``
    and ``gap_corrected`` are set.
    """

    index: int
    rows: np.ndarray
    subject_ids: list
    x: np.ndarray  # (n, *crop, 1)
    bins: np.ndarray
    predicted: np.ndarray
    headers: list
    predicted_age: np.ndarray | None = None
    gap_corrected: np.ndarray | None = None


@dataclass(frozen=True)
class ClassMaps:
    """One class slice of an explanation of a batch: a map and its bookkeeping per subject."""

    tag: str
    maps: np.ndarray  # (n, *crop)
    output: np.ndarray
    relevance_sum: np.ndarray
    rel_error: np.ndarray
    negative_share: np.ndarray
    classes: np.ndarray
    members: np.ndarray | None = None  # an ensemble's: each member's map, (members, n, *crop)


def explain_batches(settings: ExplainSettings, opened: OpenedRun, batches: list, which,
                    work: Path) -> Part:
    """Explain the batches ``which`` (global indices into ``batches``); maps go to ``work/maps``."""
    prep = opened.prep
    model = load_model(opened.train, prep.input_shape)
    analyzers = load_analyzers(model, with_reference_images(settings.methods, prep))
    groups = (gap_groups(opened, model, settings.batch_size) if opened.train.is_regression
              else None)
    return explain_with(settings, opened, Explainer(model, analyzers, groups), batches, which,
                        work)


def explain_with(settings: ExplainSettings, opened: OpenedRun, explainer: Explainer,
                 batches: list, which, work: Path) -> Part:
    """:func:`explain_batches` by a given ``explainer``: each batch is read once and every
    analyzer explains it."""
    from tqdm.auto import tqdm

    prep, model, analyzers = opened.prep, explainer.model, explainer.analyzers
    context = BatchContext(settings, opened, atlas_index(settings.atlas, prep.grid), work / "maps",
                           method_checks(settings, opened), explainer.groups, explainer.source)
    context.maps_dir.mkdir(exist_ok=True)
    which = list(which)
    builder = PartBuilder()
    with tqdm(total=sum(len(batches[b]) for b in which) * len(analyzers), desc="explaining",
              unit="map", disable=not settings.progress) as bar:
        for b in which:
            batch = read_batch(context, model, b, batches[b])
            builder.add_subjects(subject_rows(batch, prep.table))
            for name, analyzer in analyzers.items():
                explain_method(context, batch, name, analyzer, builder)
                bar.update(len(batch.rows))
    return builder.build()


def read_batch(context: BatchContext, model, index: int, rows: np.ndarray) -> Batch:
    """Volumes, bins, predictions and (one read per subject) the image headers of a batch."""
    opened, grid = context.opened, context.opened.prep.grid
    x = np.asarray(opened.prep.volumes[rows], dtype=np.float32)[..., None]
    outputs = np.asarray(model.predict(x, verbose=0))
    headers = [reference_header(opened.image_path(r), grid) for r in rows]
    ids = opened.subject_ids(rows)
    if context.groups is None:
        return Batch(index, rows, ids, x, opened.prep.labels()[rows], outputs.argmax(axis=1),
                     headers)
    ages = opened.prep.table["age"].to_numpy(dtype=float)[rows]
    gaps = context.groups.corrected_gap(ages, outputs[:, 0])
    group = context.groups.group(gaps)
    return Batch(index, rows, ids, x, group, group, headers, outputs[:, 0], gaps)


def subject_rows(batch: Batch, table) -> list[dict]:
    rows = [{"batch": batch.index, "subject_id": sid, "age": table["age"][r],
             "bin": int(batch.bins[j]), "predicted": int(batch.predicted[j]),
             "split": table["split"][r]}
            for j, (r, sid) in enumerate(zip(batch.rows, batch.subject_ids))]
    if batch.predicted_age is not None:  # a regression: "bin" and "predicted" are the gap group
        for j, row in enumerate(rows):
            row.update(predicted_age=float(batch.predicted_age[j]),
                       gap_corrected=float(batch.gap_corrected[j]))
    return rows


def explain_method(context: BatchContext, batch: Batch, name: str, analyzer,
                   builder: PartBuilder) -> None:
    """Every target of one method on one batch; the first target's maps are the primary ones."""
    n_classes = context.opened.prep.n_classes
    for position, spec in enumerate(context.settings.targets):
        explanation = explain_target(analyzer, batch, spec)
        for class_maps in class_slices(explanation, spec, n_classes, len(batch.rows)):
            save_maps(context, batch, name, class_maps, builder,
                      primary=spec if position == 0 else None)
        if position == 0 and getattr(explanation, "trace", None) is not None:
            builder.add_trace(name, explanation.trace, batch.index)


def explain_target(analyzer, batch: Batch, spec):
    """One target of the batch explained; an ensemble's members explain the ensemble's
    predicted bin (``batch.predicted``), not each its own."""
    if isinstance(analyzer, EnsembleAnalyzer):
        return analyzer.explain(batch.x, spec, batch.bins, batch.predicted)
    return analyzer.explain(batch.x, target=spec, labels=batch.bins)


def class_slices(explanation, spec, n_classes: int, n: int) -> list[ClassMaps]:
    """An explanation of ``n`` inputs cut into its class slices (one per class for ``all``)."""
    tags = map_tags(spec, n_classes)
    maps = np.asarray(explanation.maps)
    per_class = maps if spec == "all" else maps[None]
    members = getattr(explanation, "member_maps", None)  # an ensemble's
    per_member = None if members is None else (members if spec == "all" else members[:, None])

    def field(name):
        return np.asarray(getattr(explanation, name)).reshape(len(tags), n)

    output, sums, errors = field("outputs"), field("relevance_sum"), field("rel_error")
    negative, classes = field("negative_share"), field("target")
    return [ClassMaps(tag, per_class[c, ..., 0], output[c], sums[c], errors[c], negative[c],
                      classes[c], None if per_member is None else per_member[:, c, ..., 0])
            for c, tag in enumerate(tags)]


def save_maps(context: BatchContext, batch: Batch, name: str, class_maps: ClassMaps,
              builder: PartBuilder, primary) -> None:
    """Write each subject's map of one class slice; record conservation and the primary maps.

    ``primary`` is the first target's spec when these maps belong to it, else None.
    """
    grid, run_name = context.opened.prep.grid, context.source or context.opened.train.dir.name
    rule = context.settings.display
    for j, sid in enumerate(batch.subject_ids):
        label = MapLabel(name, f"{class_maps.tag}:class{int(class_maps.classes[j])}",
                         checks=context.checks[name], source=run_name)
        # The brain is the subject's own GM (the crop the network saw; the map is zero outside).
        display = display_range(class_maps.maps[j], rule.brain_mask(batch.x[j, ..., 0]), rule)
        img = relevance_image(class_maps.maps[j], grid, batch.headers[j], label, display)
        save_atomic(img, context.maps_dir / f"{sid}_{name}_{class_maps.tag}.nii.gz")
        if class_maps.members is not None:
            save_spread(context, batch, j, class_maps, label)
        if primary is not None and class_maps.tag == primary_tag(primary, batch.predicted[j]):
            # The map on the source grid (float32), as written: region sums and group maps.
            add_primary(context, batch, j, name, np.asarray(img.dataobj), builder)
            if class_maps.members is not None:
                builder.add_member_regions(member_region_rows(
                    context.atlas, context.opened.prep.grid, class_maps.members[:, j],
                    {"batch": batch.index, "subject_id": sid, "bin": int(batch.bins[j]),
                     "method": name}))
    builder.add_conservation(conservation_rows(batch, name, class_maps))


def save_spread(context: BatchContext, batch: Batch, j: int, class_maps: ClassMaps,
                label: MapLabel) -> None:
    """The SD and sign-agreement maps of subject ``j``'s ensemble map, on its grid and header:
    the SD displayed as the maps are, the agreement on the fixed 0–1 range."""
    spread = MapSpread.of(class_maps.members[:, j])
    n, sid, name = len(class_maps.members), batch.subject_ids[j], label.method
    grid, header = context.opened.prep.grid, batch.headers[j]
    rule = context.settings.display
    sd_range = display_range(spread.sd, rule.brain_mask(batch.x[j, ..., 0]), rule)
    for volume, tag, what, display in (
            (spread.sd, sd_tag(class_maps.tag), f"sd of {n} members", sd_range),
            (spread.agreement, agreement_tag(class_maps.tag), f"sign agreement of {n} members",
             AGREEMENT_RANGE)):
        img = relevance_image(volume, grid, header, replace(label, what=what), display)
        save_atomic(img, context.maps_dir / f"{sid}_{name}_{tag}.nii.gz")


def conservation_rows(batch: Batch, name: str, class_maps: ClassMaps) -> list[dict]:
    c = class_maps
    return [{"batch": batch.index, "subject_id": sid, "method": name, "target": c.tag,
             "output": float(c.output[j]), "relevance_sum": float(c.relevance_sum[j]),
             "rel_error": float(c.rel_error[j]), "class": int(c.classes[j]),
             "negative_share": float(c.negative_share[j])}
            for j, sid in enumerate(batch.subject_ids)]


def add_primary(context: BatchContext, batch: Batch, j: int, name: str, full: np.ndarray,
                builder: PartBuilder) -> None:
    """A subject's primary map into the region table and, if it counts, its bin's group sum."""
    k = int(batch.bins[j])
    stats = context.atlas.stats(full)
    stats.insert(0, "method", name)
    stats.insert(0, "bin", k)
    stats.insert(0, "subject_id", batch.subject_ids[j])
    stats.insert(0, "batch", batch.index)
    builder.add_regions(stats)
    if not context.settings.correct_only or batch.predicted[j] == k:
        builder.add_to_group(name, k, full)

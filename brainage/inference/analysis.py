"""One inference run: read the explain run, test every method's maps, write maps, tables, report.

:func:`run_inference` is what the infer stage calls inside its hidden work folder; the pieces
(:func:`prepare`, :func:`load_method`, :func:`test_method`) serve the null check and the tests too.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.config_values import given_overrides
from brainage.errors import InferError, TrainedRunError
from brainage.inference.atlas_labels import load_region_labels
from brainage.inference.covariates import CATEGORICAL, Covariates, build_covariates
from brainage.inference.designs import Design, build_design
from brainage.inference.explain_run import (
    ExplainRun,
    find_explain_run,
    read_explain_run,
    select_methods,
    select_subjects,
)
from brainage.inference.grey_matter import GreyMatter, summarise_grey_matter
from brainage.inference.member_agreement import with_member_agreement
from brainage.inference.null_check import run_shuffles
from brainage.inference.outputs import finish_run, write_method_outputs
from brainage.inference.predictions import (
    PREDICTIONS,
    correction_or_nan,
    is_regression,
    prediction_table,
    stored_correction,
    with_gap_columns,
)
from brainage.inference.region_tests import region_inference
from brainage.inference.relevance_data import nonzero_mask, read_relevance, table_regions, varying_voxels
from brainage.inference.settings import InferSettings
from brainage.inference.training_data import gm_images, participants
from brainage.inference.voxel_tests import voxel_inference
from brainage.trained import run_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What every method's tests share: the run, the design and its subjects, atlases, GM, covariates."""

    settings: InferSettings
    run: ExplainRun
    subjects: pd.DataFrame  # the design's subjects, in the order of its tested variable
    design: Design
    methods: list
    reference: object  # the first map (grid and header of the output maps)
    labels: list  # RegionLabels
    grey: GreyMatter | None
    covariates: Covariates
    mask: np.ndarray | None
    train_cfg: object  # the training config with data overrides, or None
    # An age regressor's predictions.csv of the selected subjects, and its training run's
    # stored bias correction; None for a classifier.
    predictions: pd.DataFrame | None = None
    correction: object = None  # StoredCorrection

    @property
    def n_families(self) -> int:
        """FWE families of the run: every method's voxels and regions (raw, GM-adjusted)."""
        return len(self.methods) * self.settings.families_per_method(len(self.labels))

    @property
    def alpha_fwe(self) -> float:
        """The level a family-wise p must reach: alpha, Bonferroni-split over the run's families
        with ``fwe_scope=run`` so the null rate of the whole report stays at alpha."""
        s = self.settings
        return s.alpha / self.n_families if s.fwe_scope == "run" else s.alpha


@dataclass(frozen=True)
class MethodData:
    """One method's relevance of the design's subjects."""

    method: str
    voxels: np.ndarray | None
    mask: np.ndarray | None
    regions: list  # RegionValues


def _training_config(run: ExplainRun, settings: InferSettings):
    """The training run's config with the explain run's and then the user's data overrides."""
    # The explain run's overrides block holds null for every key it did not override.
    explained = given_overrides(run.config.get("data") if run.config is not None else None)
    try:
        return run_config(run.train_dir, explained, settings.data or {})
    except TrainedRunError:
        if settings.needs_grey_matter() or set(settings.covariates) & set(CATEGORICAL):
            raise
        return None  # nothing needs the training data


def _grey_matter(settings, train_cfg, subjects, reference, labels) -> GreyMatter | None:
    if not settings.needs_grey_matter():
        return None
    voxel_ml = float(abs(np.linalg.det(reference.affine[:3, :3]))) / 1000.0
    volumes = gm_images(train_cfg, subjects["subject_id"], reference.shape[:3], reference.affine)
    return summarise_grey_matter(volumes, len(subjects), labels, voxel_ml)


def _mask(settings, grey, run, methods, subjects, reference) -> np.ndarray | None:
    v = settings.voxelwise
    if not v.enabled:
        return None
    if v.mask == "gm":
        mask = grey.mean > v.gm_threshold
    else:
        paths = [p for m in methods for p in run.map_paths(m, subjects)]
        mask = nonzero_mask(paths, reference.shape[:3], reference.affine)
    if not mask.any():
        raise InferError(f"the brain mask (voxelwise.mask={v.mask}) is empty; lower "
                         "voxelwise.gm_threshold or use voxelwise.mask=nonzero")
    return mask


def prepare(settings: InferSettings) -> Context:
    """Resolve the explain run, methods, design, atlases, GM summaries, covariates and mask."""
    import nibabel as nib


    run = read_explain_run(find_explain_run(settings.explain_dir, settings.outputs_dir))
    methods = select_methods(run, settings.methods)
    selected = select_subjects(run, settings.subjects)
    predictions, correction = _predictions(run, selected)
    if predictions is not None:
        selected = with_gap_columns(selected, predictions)
    design = build_design(selected, settings.design)
    subjects = selected.iloc[design.rows].reset_index(drop=True)
    design = replace(design, rows=np.arange(len(subjects)))  # rows of `subjects` from here on
    reference = nib.load(str(run.map_paths(methods[0], subjects.head(1))[0]))
    labels = load_region_labels(run, settings.regions, reference) if settings.regions.atlases else []
    train_cfg = _training_config(run, settings)
    grey = _grey_matter(settings, train_cfg, subjects, reference, labels)
    table = participants(train_cfg) if set(settings.covariates) & set(CATEGORICAL) else None
    covariates = build_covariates(settings.covariates, subjects["subject_id"], table,
                                  grey.total_ml if grey is not None else None)
    mask = _mask(settings, grey, run, methods, subjects, reference)
    ctx = Context(settings, run, subjects, design, methods, reference, labels, grey, covariates,
                  mask, train_cfg, predictions, correction)
    _check_permutations(ctx)
    return ctx


def _predictions(run: ExplainRun, selected: pd.DataFrame) -> tuple:
    """An age regressor's ``(predictions table, StoredCorrection)`` of the selected subjects, with
    the training run's stored correction; ``(None, None)`` for a classifier."""
    if not is_regression(run.summary):
        return None, None
    stored = stored_correction(run.train_dir)
    return prediction_table(selected, correction_or_nan(stored), run.dir), stored


def _check_permutations(ctx: Context) -> None:
    """Refuse permutation counts whose smallest p, 1 / (n_perm + 1), cannot reach the FWE level."""
    s = ctx.settings
    counts = {"voxelwise.n_perm": s.voxelwise.n_perm if s.voxelwise.enabled else None,
              "regions.n_perm": s.regions.n_perm if ctx.labels else None}
    for key, n_perm in counts.items():
        if n_perm is not None and 1.0 / (n_perm + 1) > ctx.alpha_fwe * (1 + 1e-9):
            raise InferError(f"{key}={n_perm} cannot give p(FWE) <= {ctx.alpha_fwe:.3g} (alpha "
                             f"over {ctx.n_families} families); use at least "
                             f"{int(np.ceil(1 / ctx.alpha_fwe)) - 1} permutations")


def load_method(ctx: Context, method: str) -> MethodData:
    """Read ``method``'s maps of the design's subjects once: masked voxels and region values."""
    paths = ctx.run.map_paths(method, ctx.subjects)
    shape, affine = ctx.reference.shape[:3], ctx.reference.affine
    summed = [lab for lab in ctx.labels if not lab.from_table]
    voxels, computed = read_relevance(paths, shape, affine, ctx.mask, summed, ctx.settings.measure)
    mask = ctx.mask
    if voxels is not None:
        voxels, mask = varying_voxels(voxels, mask)
    ids = list(ctx.subjects["subject_id"])
    from_table = {lab.atlas: table_regions(ctx.run, lab, method, ids, ctx.settings.measure)
                  for lab in ctx.labels if lab.from_table}
    computed = {values.atlas: values for values in computed}
    regions = [from_table[lab.atlas] if lab.from_table else computed[lab.atlas]
               for lab in ctx.labels]
    return MethodData(method, voxels, mask, regions)


def test_method(ctx: Context, data: MethodData, design: Design, seed: int) -> tuple:
    """Voxel-wise and region-wise tests of one method's relevance under ``design``.

    Returns ``(VoxelResult or None, {atlas: region table})``.
    """
    s = ctx.settings
    voxel = None
    if data.voxels is not None:
        voxel = voxel_inference(data.voxels, design, ctx.covariates.matrix,
                                _mask_image(data.mask, ctx.reference) if s.voxelwise.tfce else None,
                                s.voxelwise.n_perm, seed, s.voxelwise.tfce, s.n_jobs, ctx.alpha_fwe)
    tables = {}
    for values in data.regions:
        gm = ctx.grey.density[values.atlas][:, values.ids] if s.regions.gm_adjust else None
        tables[values.atlas] = region_inference(values.values, values.names, values.n_voxels,
                                                design, ctx.covariates.matrix, gm,
                                                s.regions.n_perm, seed)
    return voxel, tables


def _mask_image(mask: np.ndarray, reference):
    import nibabel as nib

    return nib.Nifti1Image(mask.astype(np.uint8), reference.affine)


def min_fwe(voxel, tables: dict) -> dict:
    """Smallest FWE p of each family: ``voxels``, ``regions:<atlas>`` and ``regions_adj:<atlas>``."""
    out = {}
    if voxel is not None:
        out["voxels"] = float(10.0 ** -np.max(voxel.logp_fwe, initial=0.0))
        if voxel.logp_fwe_tfce is not None:
            out["voxels_tfce"] = float(10.0 ** -np.max(voxel.logp_fwe_tfce, initial=0.0))
    for atlas, table in tables.items():
        out[f"regions:{atlas}"] = float(table["p_fwe"].min())
        if "p_fwe_adj" in table:
            out[f"regions_adj:{atlas}"] = float(table["p_fwe_adj"].min())
    return out


def null_check(ctx: Context, data: MethodData) -> pd.DataFrame:
    """``null_check.shuffles`` reruns of one method's tests under shuffled labels."""
    def test(shuffled, seed):
        voxel, tables = test_method(ctx, data, shuffled, seed)
        return {(data.method, family): p for family, p in min_fwe(voxel, tables).items()}

    return run_shuffles(ctx.design, ctx.settings.null_shuffles, ctx.settings.seed, test)


def run_inference(settings: InferSettings, work) -> dict:
    """The whole run into ``work``; returns the summary (``infer.json``)."""
    t0 = time.perf_counter()
    work = Path(work)
    ctx = prepare(settings)
    if ctx.predictions is not None:
        ctx.predictions.to_csv(work / PREDICTIONS, index=False)
    from tqdm.auto import tqdm

    results, null_tables = {}, []
    shuffles = f", then under {settings.null_shuffles} label shuffles" if settings.null_shuffles else ""
    log.info("testing %d methods' relevance of %d subjects voxel- and region-wise%s",
             len(ctx.methods), len(ctx.subjects), shuffles)
    with tqdm(ctx.methods, desc="testing", unit="method") as bar:
        for method in bar:
            bar.set_description(f"testing: {method}")
            data = load_method(ctx, method)
            voxel, tables = test_method(ctx, data, ctx.design, settings.seed)
            tables = with_member_agreement(ctx, data, tables)
            results[method] = write_method_outputs(ctx, data, voxel, tables, work)
            if settings.null_shuffles:
                bar.set_description(f"testing: {method} (null check)")
                null_tables.append(null_check(ctx, data))
    nulls = pd.concat(null_tables, ignore_index=True) if null_tables else None
    return finish_run(ctx, results, nulls, work, round(time.perf_counter() - t0, 1))


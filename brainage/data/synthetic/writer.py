"""Writing a synthetic cohort: participants, one image per subject on a worker pool, ground truth, record.

The cohort is built in a hidden sibling folder and renamed into place at the end, with
``cohort.json`` written last; an existing identical cohort is reused and a different one refused
(:mod:`~brainage.data.synthetic.record`). Subject images are rendered by worker processes (every
available core by default); each subject draws from its own seed, so the files do not depend on
their number.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from brainage.data.synthetic.ageing import REFERENCES
from brainage.data.synthetic.anatomy import build_anatomy
from brainage.data.synthetic.atrophy import loss_maps
from brainage.data.synthetic.ground_truth import DESCRIPTION, save_mni_nifti, write_ground_truth
from brainage.data.synthetic.participants import draw_participants
from brainage.data.synthetic.plant import DESCRIPTION as PLANT_DESCRIPTION
from brainage.data.synthetic.record import cohort_record, holds_cohort
from brainage.data.synthetic.render import draw_subjects, render_subject
from brainage.data.synthetic.settings import SyntheticCohortSettings, SyntheticSettings
from brainage.data.workers import resolve_workers
from brainage.errors import DataError
from brainage.neuro.grid import MNI_1P5MM_AFFINE, MNI_1P5MM_SHAPE, Grid

# State of a worker process: set once by _init_worker (or in-process for one worker).
_WORKER: dict = {}


def _init_worker(anatomy, settings: SyntheticSettings, gm_dir: str) -> None:
    _WORKER.update(anatomy=anatomy, settings=settings, maps=loss_maps(anatomy, settings), gm_dir=gm_dir)


def _write_subject(job: tuple) -> str:
    subject_id, draw = job
    w = _WORKER
    image = render_subject(w["anatomy"], w["maps"], draw, w["settings"])
    save_mni_nifti(image, w["anatomy"].affine, Path(w["gm_dir"]) / f"{subject_id}_gm.nii.gz")
    return subject_id


def _pool_context():
    """fork where safe (works from unguarded scripts); spawn once a threaded ML runtime is loaded."""
    import multiprocessing
    import sys

    threaded = any(name in sys.modules for name in ("tensorflow", "jax", "torch"))
    if threaded or "fork" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context("fork")


def _grid_geometry(grid: Grid | None) -> tuple:
    """Affine and shape of the output grid; default the 1.5 mm MNI grid 121 x 145 x 121."""
    if grid is None:
        return MNI_1P5MM_AFFINE, MNI_1P5MM_SHAPE
    return grid.affine, grid.source_shape


def _write_subjects(jobs: list, anatomy, settings: SyntheticSettings, gm_dir: Path, n_jobs,
                    bar) -> None:
    """Render and write every ``(subject_id, draw)`` job, on ``n_jobs`` processes (None = all cores)."""
    workers = resolve_workers(n_jobs, len(jobs))
    if workers == 1:
        _init_worker(anatomy, settings, str(gm_dir))
        for job in jobs:
            _write_subject(job)
            bar.update()
        return
    with ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_init_worker,
                             initargs=(anatomy, settings, str(gm_dir))) as pool:
        for _ in pool.map(_write_subject, jobs):
            bar.update()


def _write_record(work: Path, record: dict, sites: list, planted: bool) -> None:
    """``cohort.json``: the record, the references, what the ground truth holds and the sites."""
    truth = {**DESCRIPTION, **PLANT_DESCRIPTION} if planted else DESCRIPTION
    full = {**record, "references": list(REFERENCES), "ground_truth": truth, "sites": sites}
    (work / "cohort.json").write_text(json.dumps(full, indent=2) + "\n")


def _publish(work: Path, root: Path, record: dict) -> Path:
    """Rename the finished ``work`` folder to ``root`` (an empty ``root`` is replaced)."""
    try:
        if root.exists():
            root.rmdir()  # only an empty folder may be replaced (read_cohort_record checked it)
        os.rename(work, root)
    except OSError:
        # Someone else finished the same cohort first: keep theirs if it is this one.
        if holds_cohort(root, record):
            shutil.rmtree(work, ignore_errors=True)
            return root
        raise
    return root


def generate_cohort(root, n_subjects: int, seed: int = 0, age_distribution: str = "pac2019", *,
                    grid: Grid | None = None, ages=None, n_jobs: int | None = None,
                    progress: bool = True, **settings) -> Path:
    """Generate a synthetic GM cohort in the PAC 2019 layout.

    Parameters
    ----------
    root : str or Path
        Folder to create. Generation happens in a hidden sibling folder renamed to ``root`` at the
        end, with ``cohort.json`` written last. An existing identical cohort is reused; a different
        one (or an interrupted one) is an error.
    n_subjects : int
    seed : int
        Same seed and settings: byte-identical files.
    age_distribution : {"pac2019", "uniform", "balanced"}
    grid : Grid or None
        Output grid (``affine``, ``source_shape``); default the 1.5 mm MNI grid 121 x 145 x 121.
        Small grids make tests fast.
    ages : sequence of float or None
        Explicit ages (overrides ``age_distribution``; ``n_subjects`` must match).
    n_jobs : int or None
        Worker processes; None uses every available core, 1 runs in this process. The files do
        not depend on it.
    progress : bool
        Show a tqdm progress bar.
    **settings
        Further :class:`SyntheticSettings` fields (``effect_scale``, ``noise_sd``, ...; ``planted``
        a :class:`PlantSettings` or its block as a dict).

    Returns
    -------
    Path
        ``root``, holding ``gm/<subject_id>_gm.nii.gz`` (float32, MNI sform/qform code 4),
        ``participants.tsv`` (subject_id, age, sex, site; with a plant also ageing_age),
        ``ground_truth/age_effect.nii.gz``, ``ground_truth/regions.nii.gz``,
        ``ground_truth/regions.csv``, ``ground_truth/age_curves.csv`` (with a plant also
        ``ground_truth/planted.nii.gz`` and ``ground_truth/planted_regions.csv``) and ``cohort.json``.
    """
    root = Path(root)
    s = SyntheticSettings.from_dict({"seed": seed, "age_distribution": age_distribution, **settings})
    n_subjects, ages = _checked_subjects(n_subjects, ages)
    affine, shape = _grid_geometry(grid)
    record = cohort_record(n_subjects, s, affine, shape, ages)
    if holds_cohort(root, record):
        return root

    anatomy = build_anatomy(None if grid is None else Grid.build(affine, shape))
    table, sites = draw_participants(n_subjects, s, ages)
    root.parent.mkdir(parents=True, exist_ok=True)
    work = root.parent / f".{root.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        _write_cohort(work, anatomy, s, table, sites, n_jobs, progress, f"synthetic cohort -> {root}")
        _write_record(work, record, sites, s.planted is not None)
        return _publish(work, root, record)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        _WORKER.clear()


def _write_cohort(work: Path, anatomy, settings: SyntheticSettings, table, sites: list, n_jobs,
                  progress: bool, description: str) -> None:
    """The ground truth, every subject's image and the participants table, into ``work``."""
    from tqdm.auto import tqdm

    jobs = draw_subjects(table, sites, settings)
    (work / "gm").mkdir(parents=True)
    write_ground_truth(work / "ground_truth", anatomy, settings)
    with tqdm(total=len(jobs), desc=description, unit="subject", disable=not progress) as bar:
        _write_subjects(jobs, anatomy, settings, work / "gm", n_jobs, bar)
    table.to_csv(work / "participants.tsv", sep="\t", index=False, float_format="%.1f")


def _checked_subjects(n_subjects, ages) -> tuple:
    """``n_subjects`` as an int of at least 1, and ``ages`` (if given) as that many floats."""
    n_subjects = int(n_subjects)
    if n_subjects < 1:
        raise DataError(f"n_subjects must be at least 1, got {n_subjects}")
    if ages is not None:
        ages = np.asarray(ages, dtype=np.float64)
        if ages.shape != (n_subjects,):
            raise DataError(f"{len(ages)} ages given for {n_subjects} subjects")
    return n_subjects, ages


def ensure_cohort(data_cfg, grid: Grid | None = None, progress: bool = True) -> Path:
    """Generate the synthetic cohort a data config asks for, or reuse it when it is already there.

    Parameters
    ----------
    data_cfg : mapping, DictConfig or SyntheticCohortSettings
        Shaped like ``configs/data/synthetic.yaml``: ``root``, ``n_subjects``, ``generate`` and the
        ``synthetic:`` block (:class:`SyntheticSettings` fields and ``workers``). Only these keys
        are read (and resolved).
    grid : Grid or None
        Output grid; default the 1.5 mm MNI grid (small grids are for tests).
    progress : bool
        Show a tqdm progress bar while generating.

    Returns
    -------
    Path
        ``root``.

    Raises
    ------
    DataError
        When ``root`` holds a cohort with other parameters (pick another ``data.root``), an
        interrupted generation, or nothing while ``generate`` is false.
    """
    request = (data_cfg if isinstance(data_cfg, SyntheticCohortSettings)
               else SyntheticCohortSettings.from_cfg(data_cfg))
    affine, shape = _grid_geometry(grid)
    record = cohort_record(request.n_subjects, request.parameters, affine, shape, None)
    if holds_cohort(request.root, record):
        return request.root
    if not request.generate:
        raise DataError(f"{request.root} holds no synthetic cohort (no cohort.json) and "
                        "data.generate is false")
    return generate_cohort(request.root, request.n_subjects, grid=grid, n_jobs=request.workers,
                           progress=progress, **asdict(request.parameters))

"""One subject, in a worker process: check the image, run the steps, write its files whole or not.

The files are written into ``.incomplete/sub-<id>/`` of the derivative and the folder is renamed
to ``sub-<id>/`` at the end (one rename: a run killed at any point leaves no half subject), the
QC picture just before it. ``preproc.json`` records the volumes, the similarity, the seconds of
each step and the step settings the files were made with. Every failure comes back as an
:class:`Outcome` with its reason, never as an exception, so one bad subject never takes the
others down.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from brainage.data.derivative import (
    KINDS,
    PIPELINE,
    WORK_DIR,
    bids_label,
    qc_picture,
    subject_dir,
    subject_file,
)
from brainage.data.formats.nifti import load_image
from brainage.errors import DataError
from brainage.preprocessing.qc import write_picture
from brainage.preprocessing.steps import StepSettings

# The images of a SubjectResult and the derivative's name of each (derivative.subject_file).
IMAGES = {"gm_modulated": "modulated", "gm_unmodulated": "unmodulated",
          "brain_mask": "brain_mask", "gm_native": "gm_native"}
# One thread per worker: the workers share the cores (ITK reads this when it starts).
SINGLE_THREADED = {name: "1" for name in ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS",
                                          "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


@dataclass(frozen=True)
class Job:
    """What a worker needs for one subject (picklable: ``preprocess`` is a module-level function)."""

    subject_id: str
    t1: str
    derivative: str
    steps: StepSettings
    picture_dpi: int
    preprocess: Callable


@dataclass(frozen=True)
class Outcome:
    """How one subject ended: its record (``preproc.json``), or the reason it failed."""

    subject_id: str
    record: dict | None = None
    error: str | None = None
    detail: str | None = None  # an unexpected error's traceback, for the log


def single_threaded() -> None:
    """A worker's initializer: ITK, OpenMP and BLAS each on one thread."""
    os.environ.update(SINGLE_THREADED)


def brainage_version() -> str:
    """The installed brainage's version, for the records."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("brainage")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def steps_record(steps: StepSettings) -> dict:
    """The step settings as JSON holds them (tuples as lists), for comparing with a record's."""
    return json.loads(json.dumps(asdict(steps)))


def process_subject(job: Job) -> Outcome:
    """Preprocess one subject into the derivative; never raises for a bad subject."""
    try:
        return Outcome(job.subject_id, record=_process(job))
    except DataError as exc:  # PreprocessError too: the image or the steps refused the subject
        return Outcome(job.subject_id, error=str(exc))
    except Exception as exc:  # an image that breaks a step in a way it does not foresee
        return Outcome(job.subject_id, error=f"{job.subject_id}: {type(exc).__name__}: {exc}",
                       detail=traceback.format_exc())
    finally:
        shutil.rmtree(_work_dir(job), ignore_errors=True)


def _work_dir(job: Job) -> Path:
    return Path(job.derivative) / WORK_DIR / bids_label(job.subject_id)


def _process(job: Job) -> dict:
    started = time.perf_counter()
    load_image(job.t1, job.subject_id)  # a missing, unreadable or 4D image: its reason, at once
    result = job.preprocess(job.t1, job.subject_id, job.steps)
    work = _work_dir(job)
    shutil.rmtree(work, ignore_errors=True)  # left by a killed run
    seconds = dict(result.seconds)
    t0 = time.perf_counter()
    _write_images(result, work, job.subject_id)
    seconds["write"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    picture = work / "qc.png"
    write_picture(result.gm_unmodulated, picture, bids_label(job.subject_id), job.picture_dpi)
    seconds["qc_picture"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    record = _record(job, result, seconds)
    _staged(work, job.subject_id, "record").write_text(json.dumps(record, indent=2) + "\n")
    _publish(job, work, picture)
    return record


def _staged(work: Path, subject_id: str, kind: str) -> Path:
    """Where a file of the subject is written before the rename."""
    final = subject_file(Path("."), subject_id, kind)
    return work / final.relative_to(final.parts[0])


def _write_images(result, work: Path, subject_id: str) -> None:
    import nibabel as nib

    for attribute, kind in IMAGES.items():
        path = _staged(work, subject_id, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(getattr(result, attribute), str(path))


def _record(job: Job, result, seconds: dict) -> dict:
    """``preproc.json``: where the subject came from, what came out, how long it took, and how."""
    return {"subject_id": job.subject_id, "participant_id": bids_label(job.subject_id),
            "t1": str(Path(job.t1).resolve()), "pipeline": PIPELINE, "version": brainage_version(),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "volumes_ml": {k: float(v) for k, v in result.volumes_ml.items()},
            "similarity": float(result.similarity),
            "seconds": {k: round(float(v), 3) for k, v in seconds.items()},
            "steps": steps_record(job.steps), "files": list(KINDS)}


def _publish(job: Job, work: Path, picture: Path) -> None:
    """The QC picture, then the subject's folder, moved into place (each one rename)."""
    derivative = Path(job.derivative)
    final_picture = qc_picture(derivative, job.subject_id)
    final_picture.parent.mkdir(parents=True, exist_ok=True)
    os.replace(picture, final_picture)
    final = subject_dir(derivative, job.subject_id)
    if final.exists():  # an incomplete subject of an earlier run (a file deleted by hand)
        shutil.rmtree(final)
    os.rename(work, final)

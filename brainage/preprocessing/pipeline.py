"""The preprocess stage's work: raw cohort in, derivative out, summary back.

Subjects whose files are complete in the derivative are skipped (a rerun resumes), provided they
were made with the same step settings: a derivative holds one setting, and a changed one is
refused rather than mixed. A shard (``shard=i/n``, one job of a multirun) preprocesses its part
of the subjects only; the tables, QC and report are written by a run over every subject, which
finds the shards' subjects done.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from brainage.data.derivative import WORK_DIR, bids_label, derivative_dir, is_complete
from brainage.errors import DataError
from brainage.preprocessing import steps
from brainage.preprocessing.bids import RawCohort, check_outside, read_raw_cohort
from brainage.preprocessing.outputs import QC_TABLE, REPORT, read_record, write_tables
from brainage.preprocessing.qc import EXCLUDED, FLAGGED
from brainage.preprocessing.runner import run_jobs
from brainage.preprocessing.settings import PreprocessSettings
from brainage.preprocessing.steps import PreprocessError
from brainage.preprocessing.subject import Job, steps_record

log = logging.getLogger(__name__)


def preprocess_cohort(settings: PreprocessSettings, work: Path, preprocess: Callable | None = None
                      ) -> dict:
    """Preprocess every subject of ``settings`` not yet done; returns the run's summary.

    ``work`` (the stage's run folder) gets ``exclusions.csv`` when subjects were excluded.
    ``preprocess`` stands in for :func:`~brainage.preprocessing.steps.preprocess_t1` (tests; a
    module-level function, so that worker processes can import it).
    """
    preprocess = preprocess or steps.preprocess_t1
    t0 = time.perf_counter()
    derivative = derivative_dir(settings.root, settings.derivatives_dir)
    check_outside(derivative, settings.root)
    cohort = read_raw_cohort(settings.root, settings.participants, settings.t1_glob)
    _check_labels(cohort)
    first, step = settings.shard or (0, 1)
    mine = cohort.subjects[first::step]
    done = [s for s in mine if s.problem is None and is_complete(derivative, s.subject_id)]
    _check_same_steps(derivative, done, settings)
    bad = {s.subject_id: s.problem for s in mine if s.problem}
    if bad and settings.on_bad_subject == "fail":
        raise PreprocessError(f"{next(iter(bad.values()))} (on_bad_subject=fail; "
                              "on_bad_subject=exclude goes on without it)")
    finished = {s.subject_id for s in done}
    jobs = [Job(s.subject_id, str(s.t1), str(derivative), settings.steps, settings.qc.picture_dpi,
                preprocess) for s in mine if s.problem is None and s.subject_id not in finished]
    if jobs:
        derivative.mkdir(parents=True, exist_ok=True)
    outcomes = run_jobs(jobs, settings.workers, settings.on_bad_subject, settings.progress)
    bad.update({o.subject_id: o.error for o in outcomes if o.error})
    _write_exclusions(work, cohort, bad)
    summary = {"derivative": str(derivative), "root": str(settings.root), "n_subjects": len(mine),
               "n_skipped": len(done), "n_preprocessed": sum(o.error is None for o in outcomes),
               "excluded": bad}
    if settings.shard is None:
        summary.update(_finish(derivative, cohort, bad, settings))
    else:
        summary["shard"] = "{}/{}".format(*settings.shard)
    return {**summary, "seconds": round(time.perf_counter() - t0, 1)}


def _finish(derivative: Path, cohort: RawCohort, bad: dict, settings) -> dict:
    """The derivative's tables and report, once every subject is done or excluded."""
    derivative.mkdir(parents=True, exist_ok=True)
    scored = write_tables(derivative, cohort, bad, settings)
    _remove_leftovers(derivative, cohort)
    flagged = scored.loc[scored["status"] == FLAGGED, ["participant_id", "flags"]]
    counts = scored["status"].value_counts()
    if len(bad) == len(cohort.subjects):
        raise PreprocessError(f"every subject was excluded ({len(bad)}), e.g. "
                              f"{next(iter(bad.values()))}; see {derivative / QC_TABLE}")
    return {"n_ok": int(counts.get("ok", 0)), "n_flagged": int(counts.get(FLAGGED, 0)),
            "n_excluded": int(counts.get(EXCLUDED, 0)),
            "flagged": dict(zip(flagged["participant_id"], flagged["flags"])),
            "qc_table": str(derivative / QC_TABLE), "report": str(derivative / REPORT)}


def _check_labels(cohort: RawCohort) -> None:
    """Two subject ids that the derivative would name alike (``IXI-1`` and ``IXI1``) are refused."""
    seen = {}
    for subject in cohort.subjects:
        label = bids_label(subject.subject_id)
        if label in seen:
            raise DataError(f"subjects {seen[label]!r} and {subject.subject_id!r} would share the "
                            f"derivative name {label} (a BIDS label keeps letters and digits only)")
        seen[label] = subject.subject_id


def _check_same_steps(derivative: Path, done: list, settings) -> None:
    """Refuse to add subjects made with other step settings to a derivative."""
    wanted = steps_record(settings.steps)
    for subject in done:
        had = read_record(derivative, subject.subject_id).get("steps")
        if had != wanted:
            changed = sorted(k for k in wanted.keys() | (had or {}).keys()
                             if (had or {}).get(k) != wanted.get(k))
            raise DataError(
                f"{derivative} holds subjects made with other step settings ({subject.subject_id}: "
                f"{', '.join(f'steps.{k}={(had or {}).get(k)!r}' for k in changed)}); a derivative "
                "holds one setting: keep those settings, write this one elsewhere with "
                "derivatives_dir=<folder> (the data presets read derivatives_dir too), or delete it")


def _write_exclusions(work: Path, cohort: RawCohort, bad: dict) -> None:
    """``exclusions.csv`` of the run (subject_id, path, reason), as the data stage writes it."""
    if not bad:
        return
    t1 = {s.subject_id: str(s.t1 or "") for s in cohort.subjects}
    pd.DataFrame([{"subject_id": sid, "path": t1.get(sid, ""), "reason": why}
                  for sid, why in bad.items()]).to_csv(Path(work) / "exclusions.csv", index=False)


def _remove_leftovers(derivative: Path, cohort: RawCohort) -> None:
    """What killed runs left in the work folder of subjects that are done now, then the folder
    itself if nothing else is in it."""
    work = derivative / WORK_DIR
    for subject in cohort.subjects:
        if is_complete(derivative, subject.subject_id):
            shutil.rmtree(work / bids_label(subject.subject_id), ignore_errors=True)
    try:
        work.rmdir()
    except OSError:  # absent, or another run's subject in progress
        pass

"""Run directories: finding the newest finished one, refusing used ones, building one atomically."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from brainage.errors import RunDirError
from brainage.runs.record import RUN_FILE, is_finished, read_record

WORK_DIR = ".incomplete"
# What an earlier run leaves in its directory, whatever its stage: a directory holding one of
# these is never written again (only ``trainer.resume`` continues an unfinished training run).
RUN_TRACES = (RUN_FILE, ".hydra", "model.keras", "metrics.json", "checkpoint", "report.html",
              "explain.json", "shard.json", "evaluate.json", "verdict.md", "infer.json", "predict.json",
              "preprocess.json", "summary.json", "bench.json", "digits.json", "stream.json", WORK_DIR)


def latest_run(stage: str = "train", outputs="outputs", required: str = "model.keras") -> Path:
    """The newest run directory of ``stage`` that finished (its ``run.json`` says so and it holds
    ``required``; a directory from before ``run.json`` existed counts when it holds ``required``).

    Raises FileNotFoundError naming where it looked, the unfinished runs it skipped and what to do.
    """
    base = Path(outputs) / stage
    runs = sorted((p for p in base.glob("*") if p.is_dir()), key=lambda p: p.name, reverse=True)
    for run in runs:
        if is_finished(run, required):
            return run
    skipped = [r for r in runs if (r / RUN_FILE).exists() or (r / required).exists()]
    note = f" ({len(skipped)} unfinished or failed run(s) skipped)" if skipped else ""
    raise FileNotFoundError(
        f"no finished {stage} run with {required} under {base}/{note} — run `make {stage}` "
        f"first, or pass train_dir=<run directory>")


def check_fresh_run_dir(run_dir, markers=("model.keras", "metrics.json", "report.html")) -> None:
    """Refuse to write into a run directory that already holds a finished run's files."""
    run_dir = Path(run_dir)
    found = [m for m in markers if (run_dir / m).exists()]
    if found:
        raise RunDirError(f"{run_dir} already holds {', '.join(found)}; a run never "
                          "overwrites an earlier one — pick a new hydra.run.dir")


def check_unused_run_dir(run_dir) -> None:
    """Refuse a directory that holds any earlier run, finished or not (checked before anything
    is written, so a refused run leaves no trace).

    Raises
    ------
    RunDirError
        Naming the earlier run's stage and state, and how to continue it where that is possible.
    """
    run_dir = Path(run_dir)
    found = [name for name in RUN_TRACES if (run_dir / name).exists()]
    if not found:
        return
    record = read_record(run_dir)
    if record is None:
        what = f"an earlier run ({', '.join(found[:3])})"
    else:
        what = f"an earlier {record.stage} run, {record.describe()}"
    hint = ""
    if record is not None and record.continue_with and not record.alive() \
            and record.state != "finished":
        hint = f"; continue it with {record.continue_with}"
    raise RunDirError(f"{run_dir} already holds {what}{hint}; a run never overwrites an "
                      "earlier one — pick a new hydra.run.dir")


def staged_run(run_dir, produce, marker: str, refuse=()) -> dict:
    """Build a stage's outputs in a hidden work folder, then move them into ``run_dir``.

    ``produce(work)`` writes everything into ``work`` and returns the summary, which is written
    last as ``marker`` (JSON). On any failure the work folder is removed, so a failed run never
    holds a partial output. A run directory that already holds ``marker`` or one of ``refuse``
    is refused (never overwritten). From the command line, ``run.json`` says whether the run
    finished (:func:`brainage.runs.run_stage`).
    """
    run_dir = Path(run_dir)
    work = run_dir / WORK_DIR
    check_fresh_run_dir(run_dir, markers=tuple(dict.fromkeys((*refuse, marker))))
    if work.exists():  # left by a process killed in this directory
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        summary = produce(work)
        for child in work.iterdir():
            dest = run_dir / child.name
            if dest.exists():
                shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
            child.rename(dest)
        work.rmdir()
        (run_dir / marker).write_text(json.dumps(summary, indent=2, default=str))
        return summary
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

"""Finding earlier run directories (Hydra's outputs/<stage>/<date>_<time>/)."""
from __future__ import annotations

from pathlib import Path

from brainage.errors import BrainageError, RunDirError


def latest_run(stage: str = "train", outputs="outputs", required: str = "model.keras") -> Path:
    """The newest run directory of ``stage`` that holds ``required`` (i.e. finished).

    Raises FileNotFoundError naming where it looked and what to do.
    """
    base = Path(outputs) / stage
    runs = sorted((p for p in base.glob("*") if (p / required).is_file()), key=lambda p: p.name)
    if not runs:
        raise FileNotFoundError(
            f"no finished {stage} run with {required} under {base}/ — run `make {stage}` first, "
            f"or pass train_dir=<run directory>"
        )
    return runs[-1]


def check_fresh_run_dir(run_dir, markers=("model.keras", "metrics.json", "report.html")) -> None:
    """Refuse to write into a run directory that already holds a finished run's files."""
    run_dir = Path(run_dir)
    found = [m for m in markers if (run_dir / m).exists()]
    if found:
        raise RunDirError(f"{run_dir} already holds {', '.join(found)}; a run never "
                              "overwrites an earlier one — pick a new hydra.run.dir")


WORK_DIR = ".incomplete"


def staged_run(run_dir, produce, marker: str, refuse=()) -> dict:
    """Build a stage's outputs in a hidden work folder, then move them into ``run_dir``.

    ``produce(work)`` writes everything into ``work`` and returns the summary, which is written
    last as ``marker`` (JSON): its presence says the run is complete. On any failure the work
    folder is removed, so a failed run never looks complete. A run directory that already holds
    ``marker`` or one of ``refuse`` is refused (never overwritten).
    """
    import json
    import shutil

    run_dir = Path(run_dir)
    work = run_dir / WORK_DIR
    if work.exists():
        shutil.rmtree(work)
    check_fresh_run_dir(run_dir, markers=tuple(dict.fromkeys((*refuse, marker))))
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


def run_stage(stage, cfg, errors: tuple = (BrainageError,)):
    """Command-line wrapper: run ``stage(cfg, run_dir)`` in Hydra's run directory.

    A user error (a :class:`~brainage.errors.BrainageError` by default) prints ``error: <message>`` and exits with status 2 — no
    traceback. Returns ``(run_dir, summary)``.
    """
    import sys

    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        return run_dir, stage(cfg, run_dir)
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

"""Finding earlier run directories (Hydra's outputs/<stage>/<date>_<time>/)."""
from __future__ import annotations

from pathlib import Path


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
        raise FileExistsError(f"{run_dir} already holds {', '.join(found)}; a run never "
                              "overwrites an earlier one — pick a new hydra.run.dir")

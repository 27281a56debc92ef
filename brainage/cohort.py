"""Cohort stage: generate the synthetic cohort of a data config and draw it.

``python -m brainage.cohort data.n_subjects=60`` generates ``data.root`` (or reuses it when it
already holds that cohort, refuses it when it holds another) with ``data.synthetic.workers``
processes, and writes ``cohort.png`` (a young and an old subject beside the ground truth) and
``summary.json`` into its run directory ``outputs/cohort/<date>_<time>/``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from brainage.config_values import ConfigReader, flag
from brainage.data.synthetic import ensure_cohort, read_cohort_record
from brainage.data.synthetic.settings import SyntheticCohortSettings
from brainage.data.workers import resolve_workers
from brainage.runs import hydra_entry, run_stage, staged_run

FIGURE = "cohort.png"


@dataclass(frozen=True)
class CohortStageSettings:
    """What the cohort stage reads from ``configs/cohort.yaml``.

    Attributes
    ----------
    cohort : SyntheticCohortSettings
        The cohort the ``data`` group asks for.
    progress : bool
        Show a progress bar while generating.
    """

    cohort: SyntheticCohortSettings
    progress: bool

    @classmethod
    def from_cfg(cls, cfg) -> "CohortStageSettings":
        """Read the stage config; a missing or bad key is a DataError naming it."""
        stage = ConfigReader(cfg, "cohort")
        return cls(cohort=SyntheticCohortSettings.from_cfg(stage.raw("data", "a data config")),
                   progress=stage.value("progress", flag, "true or false"))


def cohort(cfg, run_dir, grid=None) -> dict:
    """Generate (or reuse) the synthetic cohort of ``cfg.data`` and draw it into ``run_dir``.

    Parameters
    ----------
    cfg : DictConfig
        Shaped like ``configs/cohort.yaml``.
    run_dir : str or Path
        A fresh run directory; one holding a finished cohort run is refused.
    grid : Grid or None
        Output grid of the images; default the 1.5 mm MNI grid (small grids are for tests).

    Returns
    -------
    dict
        The summary, also written as ``summary.json``: ``root``, ``n_subjects``, ``reused``,
        ``workers``, ``seconds``, ``figure``.
    """
    settings = CohortStageSettings.from_cfg(cfg)
    return staged_run(run_dir, lambda work: _generate_and_draw(settings, work, grid),
                      marker="summary.json")


def _generate_and_draw(settings: CohortStageSettings, work: Path, grid) -> dict:
    # deferred: imports matplotlib, not needed for --help
    from brainage.reporting.cohort_figure import plot_examples

    request = settings.cohort
    reused = read_cohort_record(request.root) is not None
    start = time.perf_counter()
    root = ensure_cohort(request, grid=grid, progress=settings.progress)
    seconds = time.perf_counter() - start
    plot_examples(root, work / FIGURE)
    return {"root": str(root), "n_subjects": request.n_subjects, "reused": reused,
            "workers": None if reused else resolve_workers(request.workers, request.n_subjects),
            "seconds": round(seconds, 2), "figure": FIGURE}


def _main(cfg: DictConfig, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_dir, summary = run_stage(cohort, cfg, run_dir=run_dir)
    how = ("reused" if summary["reused"]
           else f"generated in {summary['seconds']:.1f} s on {summary['workers']} worker(s)")
    print(f"synthetic cohort {summary['root']} ({summary['n_subjects']} subjects, {how}); "
          f"figure: {run_dir / FIGURE}")


main = hydra_entry(_main, "cohort")


if __name__ == "__main__":
    main()

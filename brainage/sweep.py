"""Sweep stage: a training sweep (Hydra multirun) gathered into one table.

A sweep is a Hydra multirun of the training stage, each run in its own directory::

    python -m brainage.train -m seed=1,2,3 model.widths=[4,8,16,32],[8,16,32,64]
    python -m brainage.sweep sweep_dir=multirun/train/<date>_<time>     # or: ... sweep <dir>

writes ``sweep.csv`` and ``sweep.md`` (one row per run: the overrides it ran with, its test
accuracy, balanced and per-bin accuracy, best epoch, timings; unfinished runs are listed with
status ``unfinished``) and ``sweep_summary.csv`` (mean, SD and count over ``over``, seeds by
default, per remaining setting) next to the runs, or into ``out`` (see ``configs/sweep.yaml``).
The work is done by :mod:`brainage.training.sweeps`.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from brainage.runs import hydra_entry, run_stage
from brainage.training.legacy_args import hydra_overrides


def sweep(cfg: DictConfig, run_dir: str | Path | None = None) -> dict:
    """Gather the runs under ``cfg.sweep_dir``, write the tables and print the Markdown one.

    Returns
    -------
    dict
        The paths written: ``runs`` (sweep.csv), ``summary`` (sweep_summary.csv), ``markdown``.

    Raises
    ------
    TrainError
        No ``sweep_dir``, not a directory, or no training runs under it.
    """
    # deferred: imports pandas, not needed for --help
    from brainage.training.sweeps import SweepSettings, write_sweep_tables

    settings = SweepSettings.from_cfg(cfg)
    paths = write_sweep_tables(settings.sweep_dir, settings.out, settings.over)
    print(paths["markdown"].read_text())
    print(f"wrote {paths['runs']}, {paths['summary']} and {paths['markdown']}")
    return {key: str(path) for key, path in paths.items()}


def _main(cfg: DictConfig, run_dir=None) -> None:
    """Command line: ``python -m brainage.sweep sweep_dir=<dir> [out=<dir>] [over=seed]``;
    ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_stage(sweep, cfg, run_dir=run_dir)


def _legacy_args(args: list) -> list:
    """The earlier ``python -m brainage.sweep <dir> [--out <dir>] [--over seed]`` rewritten into
    overrides."""
    return hydra_overrides(args, "sweep_dir", {"--out": "out", "--over": "over"})


main = hydra_entry(_main, "sweep", legacy_args=_legacy_args)


if __name__ == "__main__":
    main()

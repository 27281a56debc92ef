"""Run directories (Hydra's ``outputs/<stage>/<date>_<time>/``) and their state.

* :mod:`~brainage.runs.record` — ``run.json``: running, finished, failed or interrupted;
* :mod:`~brainage.runs.directories` — the newest finished run, refusing used directories, building
  a stage's outputs in a work folder;
* :mod:`~brainage.runs.cli` — :func:`run_stage`, every stage's command-line wrapper.
"""
from brainage.runs.cli import hydra_entry, quote_path_templates, run_stage
from brainage.runs.directories import (
    WORK_DIR,
    check_fresh_run_dir,
    check_unused_run_dir,
    latest_run,
    staged_run,
)
from brainage.runs.record import RUN_FILE, RunRecord, is_finished, read_record, unfinished_reason

__all__ = ["RUN_FILE", "RunRecord", "WORK_DIR", "check_fresh_run_dir", "check_unused_run_dir",
           "hydra_entry", "is_finished", "latest_run", "quote_path_templates", "read_record",
           "run_stage", "staged_run", "unfinished_reason"]

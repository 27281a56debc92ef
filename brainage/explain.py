"""The explain stage: relevance maps in world space, group maps, atlas-region tables, report.

``python -m brainage.explain`` (``make explain``) explains the newest training run unless given
``train_dir=…`` or ``model_path=…``. Outputs go to ``outputs/explain/<date>_<time>/``:
``maps/<subject>_<method>_<target>.nii.gz``, ``group/<method>_bin<k>_mean.nii.gz``,
``regions/<atlas>_subjects.csv``, ``regions/<atlas>_summary.csv``, ``conservation.csv``,
``figures/*.png``, ``report.html`` and ``explain.json``. Everything is written into a hidden
work folder and moved into place at the end, so a failed run never looks complete.

``train_dirs=[A,B,C]`` explains an ensemble of training runs as one model: the members' mean
maps with their SD and agreement maps, region tables across members and the reliability (ICC) of
regional relevance (:mod:`brainage.explaining.ensemble_run`, docs/explaining.md "Ensembles").

At scale, ``shard=i/n`` explains a deterministic n-th of the subjects (a multirun over i, e.g.
on SLURM) and ``merge=<multirun dir>`` combines the shards into the files above, identical to a
single job (:mod:`brainage.explaining.shards`, :mod:`brainage.explaining.merge`, and
docs/scaling.md). The work itself is done by :mod:`brainage.explaining`.
"""
from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from brainage.explaining.age_groups import check_regression_targets
from brainage.explaining.batches import batch_rows, explain_batches
from brainage.explaining.combine import combine_parts
from brainage.explaining.ensemble_run import explain_ensemble
from brainage.explaining.merge import merge_shards
from brainage.explaining.settings import ExplainSettings
from brainage.explaining.shards import SHARD_FILE, explain_shard
from brainage.explaining.targets import check_target_classes
from brainage.runs import hydra_entry, run_stage, staged_run
from brainage.trained import open_train_run, resolve_train_run


def explain(cfg, run_dir) -> dict:
    """Run the explain stage into ``run_dir``; returns the summary written to ``explain.json``.

    With ``shard=i/n`` only the i-th of n deterministic parts of the subjects is explained and
    the run directory holds that shard (maps and partial tables, ``shard.json`` last); with
    ``merge=<dirs>`` the shards are combined into the same files a single job writes.
    """
    settings = ExplainSettings.from_cfg(cfg)
    if settings.train_dirs:  # the members are opened (and refused) inside the work folder
        produce = partial(explain_ensemble, settings)
    elif settings.merge:
        produce = partial(merge_shards, settings)
    elif settings.shard:
        produce = partial(explain_shard, _pin_train_run(settings))
    else:
        produce = partial(_explain_all, _pin_train_run(settings))
    # The marker is written last: its presence says the run (or shard) is complete.
    return staged_run(Path(run_dir), produce, marker=SHARD_FILE if settings.shard else "explain.json",
                      refuse=("report.html", "explain.json", SHARD_FILE))


def _pin_train_run(settings: ExplainSettings) -> ExplainSettings:
    """The training run resolved once (the newest is said in the log, and stays the one used
    even if another finishes meanwhile); class targets checked against its model before any
    data or model is loaded."""
    train = resolve_train_run(settings.run)
    if train.is_regression:
        check_regression_targets(settings.targets, train.dir)
    else:
        check_target_classes(settings.targets, train.n_classes, train.dir)
    return replace(settings, run=replace(settings.run, train_dir=train.dir,
                                         model_path=train.model_path))


def _explain_all(settings: ExplainSettings, work: Path) -> dict:
    """A single job: every selected subject, then tables, group maps, figures and report."""
    t0 = time.perf_counter()
    opened = open_train_run(settings.run, settings.progress)
    batches = batch_rows(opened.rows, settings.batch_size)
    part = explain_batches(settings, opened, batches, range(len(batches)), work)
    return combine_parts(settings, opened, [part], work, t0)


def _main(cfg, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_dir, summary = run_stage(explain, cfg, run_dir=run_dir)
    if "shard" in summary:
        print(f"explained shard {summary['shard']} ({len(summary['subject_ids'])} subjects): "
              f"{run_dir}; combine the shards with merge=<their multirun directory>")
    else:
        print(f"explained {summary['n_subjects']} subjects with "
              f"{', '.join(summary['methods'])}: {run_dir}/report.html")


main = hydra_entry(_main, "explain")

if __name__ == "__main__":
    main()

"""A training sweep (a Hydra multirun of the training stage) gathered into tables.

One row per run (the overrides it ran with, its test accuracy, balanced and per-bin accuracy,
each baseline's test accuracy on the same split (``baseline_<name>``), best epoch, timings;
a regression run: its test MAE, RMSE, Pearson r and R² (``test_mae``, …), its predicted ages' accuracy
in the age bins (``test_binned_accuracy``) and each baseline's MAE and binned accuracy;
unfinished runs have status ``unfinished``) in ``sweep.csv`` and ``sweep.md``, and
``sweep_summary.csv``: mean, SD and count over one override (seeds, usually) per remaining
setting. The folds of a cross-validation run (``fold<i>/`` with ``trainer.cv_folds``) are runs
too: each carries its parent's overrides and a ``cv_fold`` column, over which it can be averaged.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.errors import TrainError

METRICS = ["test_accuracy", "test_balanced_accuracy"]
# A regression run's (model.task=regression) test metrics: metrics.json key -> sweep column.
REGRESSION_METRICS = {"mae": "test_mae", "rmse": "test_rmse", "pearson_r": "test_pearson_r",
                      "r2": "test_r2"}
SKIP_DIRS = {".submitit", "checkpoint", ".hydra"}


@dataclass(frozen=True)
class SweepSettings:
    """The ``sweep`` stage's config (``configs/sweep.yaml``), read once."""

    sweep_dir: Path
    out: Path | None
    over: str

    @classmethod
    def from_cfg(cls, cfg) -> "SweepSettings":
        """Raises TrainError when ``sweep_dir`` is not given."""
        from omegaconf import OmegaConf

        if OmegaConf.is_missing(cfg, "sweep_dir") or not cfg.sweep_dir:
            raise TrainError("sweep_dir is required: python -m brainage.sweep "
                             "sweep_dir=multirun/train/<date>_<time>")
        return cls(sweep_dir=Path(str(cfg.sweep_dir)), out=Path(str(cfg.out)) if cfg.out else None,
                   over=str(cfg.over))


def find_runs(sweep_dir) -> list:
    """Run directories under ``sweep_dir``: those with ``.hydra/overrides.yaml`` or metrics.json,
    except one that holds runs itself (a cross-validation run's folds stand for it)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise TrainError(f"sweep_dir={sweep_dir} is not a directory; pass a multirun directory "
                         "such as multirun/train/<date>_<time>")
    found = {p.parent.parent for p in sweep_dir.rglob("overrides.yaml") if p.parent.name == ".hydra"}
    found |= {p.parent for p in sweep_dir.rglob("metrics.json")}
    found = [p for p in found if not SKIP_DIRS & set(p.relative_to(sweep_dir).parts)]
    found = [p for p in found if not any(p in other.parents for other in found)]
    return sorted(found, key=lambda p: _natural_key(p.relative_to(sweep_dir).as_posix()))


def read_overrides(run_dir) -> dict:
    """``{key: value}`` of the task overrides a run was started with (Hydra's overrides.yaml; a
    fold of a cross-validation run has its parent's)."""
    run_dir = Path(run_dir)
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        path = run_dir.parent / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    from omegaconf import OmegaConf

    out = {}
    for item in OmegaConf.load(path):
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out


def gather(sweep_dir) -> pd.DataFrame:
    """One row per run: ``run``, ``status``, the overrides, then the metrics."""
    sweep_dir = Path(sweep_dir)
    runs = find_runs(sweep_dir)
    if not runs:
        raise TrainError(f"no training runs under {sweep_dir} (no .hydra/overrides.yaml or "
                         "metrics.json)")
    rows, override_keys = [], []
    for run in runs:
        overrides = read_overrides(run)
        override_keys += [k for k in overrides if k not in override_keys]
        row = {"run": run.relative_to(sweep_dir).as_posix() or ".", **overrides}
        metrics_path = run / "metrics.json"
        if metrics_path.is_file():
            row.update(status="finished", **_metric_columns(json.loads(metrics_path.read_text())))
        else:
            row["status"] = "unfinished"
        rows.append(row)
    table = pd.DataFrame(rows)
    first = ["run", "status", *override_keys]
    return table[first + [c for c in table.columns if c not in first]]


def summarise(table: pd.DataFrame, over: str) -> pd.DataFrame:
    """Mean, SD and n of the test metrics over ``over`` for each combination of other overrides."""
    done = table[table["status"] == "finished"]
    metric_cols = [c for c in table.columns
                   if c in METRICS or c in REGRESSION_METRICS.values()
                   or c.startswith(("test_acc_bin", "baseline_"))]
    settings = [c for c in table.columns
                if c not in ("run", "status", over) and c not in _metric_names(table)]
    if done.empty:
        return pd.DataFrame(columns=settings + ["n"])
    groups = done.groupby(settings, dropna=False, sort=False) if settings else [((), done)]
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(settings, key), n=len(group))
        for col in metric_cols:
            values = pd.to_numeric(group[col], errors="coerce")
            row[f"{col}_mean"] = values.mean()
            row[f"{col}_sd"] = values.std() if len(values) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, floatfmt: str = "{:.4f}") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    # Counts stay counts: a float column whose values are all whole numbers prints as integers.
    whole = {c for c in table.columns if table[c].dtype.kind == "f"
             and np.all(np.mod(table[c].dropna(), 1) == 0)}

    def cell(value, column):
        if isinstance(value, float):
            if np.isnan(value):
                return ""
            return f"{value:.0f}" if column in whole else floatfmt.format(value)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(v, c) for v, c in zip(row, table.columns)) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_sweep_tables(sweep_dir, out, over: str) -> dict:
    """Write ``sweep.csv``, ``sweep_summary.csv`` and ``sweep.md`` into ``out`` (None: the sweep
    directory); returns their paths."""
    sweep_dir = Path(sweep_dir)
    out = Path(out) if out else sweep_dir
    table = gather(sweep_dir)
    summary = summarise(table, over)
    out.mkdir(parents=True, exist_ok=True)  # only once there is something to write
    paths = {"runs": out / "sweep.csv", "summary": out / "sweep_summary.csv",
             "markdown": out / "sweep.md"}
    table.to_csv(paths["runs"], index=False)
    summary.to_csv(paths["summary"], index=False)
    n_done = int((table["status"] == "finished").sum())
    paths["markdown"].write_text(
        f"# Sweep {sweep_dir}\n\n{n_done} of {len(table)} runs finished.\n\n## Runs\n\n"
        + to_markdown(table) + f"\n## Mean and SD over {over}\n\n" + to_markdown(summary))
    return paths


def _metric_columns(metrics: dict) -> dict:
    # .get: metrics.json of runs made by earlier versions may lack newer keys.
    if metrics.get("task") == "regression":  # years: the errors, r and R², baselines' MAE
        out = {column: metrics.get(key) for key, column in REGRESSION_METRICS.items()}
        out["test_binned_accuracy"] = (metrics.get("binned") or {}).get("test_accuracy")
        score = "mae"
    else:
        out = {key: metrics.get(key) for key in METRICS}
        score = "test_accuracy"
    for k, value in enumerate(metrics.get("test_per_bin_accuracy") or []):
        out[f"test_acc_bin{k}"] = value
    for name, entry in (metrics.get("baselines") or {}).items():
        out[f"baseline_{name}"] = entry.get(score)
        if score == "mae":  # the age ridges' binned accuracy, beside the regressor's
            out[f"baseline_{name}_binned_accuracy"] = entry.get("test_accuracy")
    out["cv_fold"] = metrics.get("cv_fold")
    timings = metrics.get("timings") or {}
    out.update(test_n=metrics.get("test_n"), best_epoch=metrics.get("best_epoch"),
               epochs_run=metrics.get("epochs_run"), stopped_early=metrics.get("stopped_early"),
               best_monitor_value=metrics.get("best_monitor_value"),
               train_seconds=timings.get("train_seconds"),
               train_volumes_per_s=timings.get("train_volumes_per_s"),
               replicas=timings.get("replicas"))
    return out


def _metric_names(table: pd.DataFrame) -> set:
    sample = _metric_columns({"test_per_bin_accuracy": [0] * 64})
    sample.update(_metric_columns({"task": "regression"}))
    return {c for c in table.columns if c in sample or c.startswith("baseline_")}


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]

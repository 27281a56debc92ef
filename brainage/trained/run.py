"""Which finished training run, and what it holds: ``run.json``, resolved config, split, metrics.

:func:`resolve_train_run` finds the run (``model_path``, ``train_dir`` or the newest finished one
under ``outputs_dir``) and refuses one that did not finish; :class:`TrainRun` reads its files and
gives its data config with the user's overrides (:meth:`TrainRun.data_config`,
:func:`run_config`). Problems raise :class:`~brainage.errors.TrainedRunError`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from brainage.config_values import given_overrides
from brainage.errors import TrainedRunError
from brainage.runs import RunRecord, latest_run, read_record, unfinished_reason

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TrainRunRequest:
    """Which training run to use and which of its subjects.

    Attributes
    ----------
    train_dir, model_path : Path or None
        The run directory, or the model file whose folder is the run; neither: the newest run.
    outputs_dir : Path
        Where the newest run is looked for (``<outputs_dir>/train/<date>_<time>``).
    data : dict
        Overrides of the run's data config (e.g. a moved cache).
    subjects : str or tuple of str
        ``test``, ``val``, ``train``, ``all`` or subject ids.
    """

    train_dir: Path | None
    model_path: Path | None
    outputs_dir: Path
    data: dict
    subjects: str | tuple

    @classmethod
    def from_cfg(cls, cfg) -> "TrainRunRequest":
        """Read ``train_dir``, ``model_path``, ``outputs_dir``, ``data`` and ``subjects``."""
        subjects = cfg.subjects
        if isinstance(subjects, str):
            if subjects not in ("all", *SPLITS):  # a comma-separated list of ids
                subjects = tuple(s.strip() for s in subjects.split(",") if s.strip())
        else:
            subjects = tuple(str(s) for s in subjects)
        data = given_overrides(cfg.data)
        return cls(_optional_path(cfg.train_dir), _optional_path(cfg.model_path),
                   Path(cfg.outputs_dir), data, subjects)


@dataclass(frozen=True)
class TrainRun:
    """A finished training run: its directory, model file, resolved config and ``split.csv``."""

    dir: Path
    model_path: Path
    cfg: object
    split: pd.DataFrame

    @property
    def task(self) -> str:
        """``classification`` or ``regression`` (``model.task``; runs made before regression
        existed have no such key and are classifiers)."""
        from omegaconf import OmegaConf

        return str(OmegaConf.select(self.cfg, "model.task") or "classification")

    @property
    def is_regression(self) -> bool:
        return self.task == "regression"

    @property
    def n_classes(self) -> int:
        """Classes of the model: ``model.n_classes``, or one per age bin of the run's data (1,
        the age output, for a regression)."""
        from omegaconf import OmegaConf

        if self.is_regression:
            return 1
        n_classes = OmegaConf.select(self.cfg, "model.n_classes")
        return int(n_classes) if n_classes else len(self.cfg.data.bin_edges) - 1

    def record(self) -> RunRecord | None:
        """The run's ``run.json`` (None for a run made before run records existed)."""
        return read_record(self.dir)

    def metrics(self) -> dict:
        """The run's ``metrics.json``."""
        path = self.dir / "metrics.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise TrainedRunError(f"{path} is missing or unreadable ({exc}); the training run "
                                  "did not finish its evaluation") from exc

    def data_config(self, *overrides: dict):
        """The run's data config with ``overrides`` merged in, in order; a key the run's data
        config does not have is an error (a typo would otherwise be ignored)."""
        return _merged_data(self.cfg, self.dir, overrides).data


def read_run_config(train_dir):
    """The resolved config training saved (``<train_dir>/.hydra/config.yaml``)."""
    from omegaconf import OmegaConf

    train_dir = Path(train_dir)
    config_path = train_dir / ".hydra" / "config.yaml"
    if not config_path.is_file():
        raise TrainedRunError(f"{train_dir} has no .hydra/config.yaml: cannot tell which data the "
                              "model was trained on")
    return OmegaConf.load(config_path)


def run_config(train_dir, *overrides: dict):
    """The run's whole config with ``overrides`` of its data config merged in, in order (whole,
    so that interpolations such as ``${seed}`` resolve); keys are checked as by
    :meth:`TrainRun.data_config`."""
    return _merged_data(read_run_config(train_dir), Path(train_dir), overrides)


def _merged_data(cfg, train_dir: Path, overrides):
    """A copy of ``cfg`` whose ``data`` has every override merged in, each one's keys checked."""
    from omegaconf import OmegaConf

    merged = OmegaConf.create(OmegaConf.to_container(cfg))
    for layer in overrides:
        unknown = _unknown_keys(cfg.data, layer or {}, "data")
        if unknown:
            raise TrainedRunError(f"{unknown[0]}: not a key of the training run's data config "
                                  f"({train_dir}/.hydra/config.yaml); check the spelling")
        merged.data = OmegaConf.merge(merged.data, layer or {})
    return merged


def resolve_train_run(request: TrainRunRequest) -> TrainRun:
    """The requested training run, checked to hold what using it needs."""
    train_dir, model_path = _locate(request)
    cfg = read_run_config(train_dir)
    split_path = train_dir / "split.csv"
    if not split_path.is_file():
        raise TrainedRunError(f"{train_dir} has no split.csv")
    split = pd.read_csv(split_path, dtype={"subject_id": str})
    return TrainRun(train_dir, model_path, cfg, split)


def _locate(request: TrainRunRequest) -> tuple[Path, Path]:
    """``(train_dir, model_path)``: from ``model_path``, from ``train_dir``, or the newest run.

    A run whose ``run.json`` says it did not finish (running, failed, interrupted, killed) is
    refused; the newest run is the newest *finished* one, and the log says which it is.
    """
    if request.model_path:
        if not request.model_path.is_file():
            raise TrainedRunError(f"model_path={request.model_path} does not exist")
        train_dir = Path(request.train_dir or request.model_path.parent)
        _check_finished(train_dir, f"model_path={request.model_path}")
        return train_dir, request.model_path
    if request.train_dir:
        train_dir = request.train_dir
        if not train_dir.is_dir():
            raise TrainedRunError(f"train_dir={train_dir} does not exist; pass a training run "
                                  "directory such as outputs/train/<date>_<time>")
        if not (train_dir / "model.keras").is_file():
            raise TrainedRunError(f"train_dir={train_dir} holds no model.keras (unfinished or not "
                                  "a training run); pass a finished run or model_path=…")
        _check_finished(train_dir, f"train_dir={train_dir}")
        return train_dir, train_dir / "model.keras"
    try:
        train_dir = latest_run("train", request.outputs_dir)
    except FileNotFoundError as exc:
        raise TrainedRunError(str(exc)) from exc
    log.info("training run %s: the newest finished one under %s (train_dir=… picks another)",
             train_dir, Path(request.outputs_dir) / "train")
    return train_dir, train_dir / "model.keras"


def _check_finished(train_dir: Path, given: str) -> None:
    reason = unfinished_reason(train_dir)
    if reason is not None:
        raise TrainedRunError(f"{given}: the training run {train_dir} did not finish, its run.json "
                              f"says {reason}; pass a finished run")


def _unknown_keys(config, overrides: dict, prefix: str) -> list:
    """Dotted names of the keys of ``overrides`` that ``config`` lacks."""
    unknown = []
    for key, value in overrides.items():
        if key not in config:
            unknown.append(f"{prefix}.{key}")
        elif isinstance(value, dict) and hasattr(config[key], "keys"):
            unknown += _unknown_keys(config[key], value, f"{prefix}.{key}")
    return unknown


def _optional_path(value) -> Path | None:
    return Path(str(value)) if value else None

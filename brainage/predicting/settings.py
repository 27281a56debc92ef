"""The predict stage's settings, read once from ``configs/predict.yaml`` (its single source of
defaults)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from brainage.config_values import (
    ConfigReader,
    Wording,
    at_least,
    flag,
    given_overrides,
    real,
    sequence,
    text,
)
from brainage.ensemble.members import stands_for_runs
from brainage.errors import PredictError
from brainage.neuro.nifti import DisplayRule
from brainage.trained import TrainRunRequest


@dataclass(frozen=True)
class PredictSettings:
    """Everything the predict stage reads from its config.

    Attributes
    ----------
    run : TrainRunRequest
        The training run (``train_dir``, ``model_path`` or the newest finished one under
        ``outputs_dir``) and the overrides of its data config (``data.root=…``); every subject.
    train_dirs : tuple of Path or None
        An ensemble's training runs (``train_dirs=[A,B,C]``, or a sweep directory standing for
        its runs, or an ensemble training run, also as ``train_dir=<it>``;
        :mod:`brainage.ensemble.members`); None: the one run of ``run``.
    maps : bool
        Write a relevance map per subject and their mean.
    method : str or None
        The explanation method of the maps; None: the model's default
        (:func:`brainage.predicting.methods.choose_method`).
    batch_size : int
    display : DisplayRule
        Each map's display range.
    progress : bool
    """

    run: TrainRunRequest
    train_dirs: tuple | None
    maps: bool
    method: str | None
    batch_size: int
    display: DisplayRule
    progress: bool

    @property
    def outputs_dir(self) -> Path:
        return self.run.outputs_dir

    @classmethod
    def from_cfg(cls, cfg) -> "PredictSettings":
        """Read and check ``cfg`` (a composed ``predict`` config) before any slow work."""
        predict = ConfigReader(cfg, "", PredictError, Wording(null_is_bad=True))
        run = TrainRunRequest(
            train_dir=_path(predict.value("train_dir", text, "a training run directory or null",
                                          optional=True)),
            model_path=_path(predict.value("model_path", text, "a model.keras file or null",
                                           optional=True)),
            outputs_dir=Path(predict.value("outputs_dir", text, "a folder")),
            data=given_overrides(cfg.data), subjects="all")
        train_dirs = predict.value("train_dirs", _run_dirs,
                                   "a list of training runs [runA,runB] or a sweep directory",
                                   optional=True)
        if not train_dirs and run.train_dir and not run.model_path \
                and stands_for_runs(run.train_dir):  # train_dir=<ensemble run>: train_dirs=[it]
            train_dirs, run = (run.train_dir,), replace(run, train_dir=None)
        if train_dirs and (run.train_dir or run.model_path):
            raise PredictError("give train_dirs=[…] (an ensemble) or train_dir/model_path (one "
                               "run), not both")
        display = predict.block("display", "a mapping")
        try:
            rule = DisplayRule(*(display.value(key, real, "a number") for key in
                                 ("low_percentile", "high_percentile", "brain_threshold")))
        except ValueError as exc:
            raise PredictError(str(exc)) from exc
        return cls(run=run, train_dirs=train_dirs or None,
                   maps=predict.value("maps", flag, "true or false"),
                   method=predict.value("method", text, "a method of configs/explainer/ or null",
                                        optional=True),
                   batch_size=predict.value("batch_size", at_least(1), "a number ≥ 1"),
                   display=rule, progress=predict.value("progress", flag, "true or false"))


def _run_dirs(value) -> tuple:
    """``train_dirs``: a list of run directories, or one directory (a sweep of runs)."""
    if isinstance(value, str):
        return (Path(value),)
    return tuple(Path(v) for v in sequence(text)(value))


def _path(value) -> Path | None:
    return Path(value) if value else None

"""The training stage's settings, read once from the composed ``train`` config.

Every value comes from the YAML (``configs/train.yaml``, ``configs/trainer/default.yaml``,
``configs/model/``, ``configs/data/``); nothing here repeats a default.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from brainage.config_values import ConfigReader, at_least, flag, integer, number, one_of, text
from brainage.errors import TrainError
from brainage.model import ModelSettings
from brainage.training.baselines.settings import BaselineSettings
from brainage.training.distribution import DISTRIBUTIONS

LR_SCHEDULES = ("none", "cosine", "plateau")
MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy", "val_mae", "mae")
# What a regression run logs besides the loss (mean absolute error in years).
REGRESSION_MONITORS = ("val_loss", "loss", "val_mae", "mae")
POSITIVE = "a positive number"


@dataclass(frozen=True, eq=False)
class TrainSettings:
    """What the training stage does, typed and validated.

    Attributes
    ----------
    seed : int
        Seeds Keras, the data split (through the data config) and the data order.
    epochs, batch_size : int
        ``batch_size`` is the global batch (split over the devices of a data-parallel run).
    learning_rate, min_lr : float
        Adam's initial rate; the floor of the ``cosine`` and ``plateau`` schedules.
    lr_schedule : {"none", "cosine", "plateau"}
    plateau_factor : float
    plateau_patience : int
    early_stopping_patience : int or None
        None: never stop early.
    monitor : {"val_loss", "val_accuracy", "loss", "accuracy", "val_mae", "mae"}
        Accuracies for classification, MAE for regression (``model.task``). Picks the best epoch
        (the model kept) and drives early stopping and the plateau schedule.
    max_shift : int
        Augmentation by random translation of up to this many voxels; 0 when augmentation is off.
    mixed_precision, deterministic : bool
    distribution : {"auto", "none", "data_parallel"}
    resume : Path or None
        An interrupted run directory to continue.
    verbose : int
        0 silent, 1 progress bar and a line per epoch, 2 a line per epoch.
    stream_workers, stream_prefetch : int
        Reader threads and queued batches of the input pipeline (``data.stream``).
    precise_bn : bool
        Recompute the BatchNorm population statistics over the training split before every
        validation (:mod:`brainage.training.precise_bn`).
    precise_bn_batches : int or None
        How many training batches precise BN averages; None: all.
    baselines : BaselineSettings
        The scikit-learn baselines fitted on the same split.
    cv_folds : int or None
        Stratified k-fold cross-validation (k >= 2) instead of the data stage's single split.
    cv_fold : int or None
        With ``cv_folds``: the one fold (0-based) this run trains; None trains them all.
    ensemble : int or None
        N >= 2: train N members seeded ``seed`` … ``seed + N - 1`` as one ensemble run
        (:mod:`brainage.training.ensemble_run`); None or 1: one model.
    init_from : Path or None
        A finished training run (its ``model.keras``) or a ``.keras`` file whose matching layers
        a fresh model starts from (:mod:`brainage.training.warm_start`); None: random weights.
    model : ModelSettings
    data : DictConfig
        The ``data`` group, handed to the data stage as it is.
    config : DictConfig
        The whole composed config: saved with the checkpoint, which a resumed run starts from.
    """

    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    lr_schedule: str
    min_lr: float
    plateau_factor: float
    plateau_patience: int
    early_stopping_patience: int | None
    monitor: str
    max_shift: int
    mixed_precision: bool
    deterministic: bool
    distribution: str
    resume: Path | None
    verbose: int
    stream_workers: int
    stream_prefetch: int
    precise_bn: bool
    precise_bn_batches: int | None
    baselines: BaselineSettings
    cv_folds: int | None
    cv_fold: int | None
    ensemble: int | None
    init_from: Path | None
    model: ModelSettings
    data: DictConfig
    config: DictConfig

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> "TrainSettings":
        """Read and check the ``train`` config.

        Raises
        ------
        TrainError
            A setting missing, of the wrong kind or outside its allowed values; the message names
            the key (``trainer.epochs``) and what was expected.
        """
        top = ConfigReader(cfg, "", TrainError)
        trainer = top.block("trainer", "the trainer group")
        stream = top.block("data", "the data group").block("stream", "a stream block")
        settings = cls(
            seed=top.value("seed", at_least(0), "a seed >= 0"),
            **_schedule_fields(trainer),
            **_run_fields(trainer),
            stream_workers=stream.value("workers", at_least(1), POSITIVE),
            stream_prefetch=stream.value("prefetch", at_least(1), POSITIVE),
            **_later_fields(trainer),
            model=ModelSettings.from_cfg(top.raw("model", "the model group")),
            data=cfg.data,
            config=cfg,
        )
        settings._check()
        return settings

    def _check(self) -> None:
        """What no single key says: the monitor against the task, the fold against the folds,
        an ensemble against folds and resumption."""
        self._check_task()
        self._check_folds()
        self._check_ensemble()

    def _check_task(self) -> None:
        regression = self.model.is_regression
        if regression and self.monitor not in REGRESSION_MONITORS:
            raise TrainError(f"trainer.monitor={self.monitor} with model.task=regression; expected "
                             f"one of {', '.join(REGRESSION_MONITORS)}")
        if not regression and "mae" in self.monitor:
            raise TrainError(f"trainer.monitor={self.monitor} needs model.task=regression")

    @property
    def logged(self) -> tuple:
        """What every epoch logs: the loss and the task's metric, on training and validation."""
        metric = "mae" if self.model.is_regression else "accuracy"
        return ("loss", metric, "val_loss", f"val_{metric}")

    def _check_folds(self) -> None:
        folds, fold = self.cv_folds, self.cv_fold
        if fold is not None and (folds is None or not 0 <= fold < folds):
            raise TrainError(f"trainer.cv_fold={fold} needs trainer.cv_folds=k with "
                             f"0 <= cv_fold < k (cv_folds={folds})")

    def _check_ensemble(self) -> None:
        if not self.runs_ensemble:
            return
        if self.cv_folds is not None:
            raise TrainError(f"trainer.ensemble={self.ensemble} with trainer.cv_folds="
                             f"{self.cv_folds}: train an ensemble or cross-validate, not both")
        if self.resume:
            raise TrainError(f"trainer.ensemble={self.ensemble} with trainer.resume={self.resume}"
                             ": an ensemble is resumed member by member, trainer.resume=<run>/"
                             "members/<k>_seed<s>")

    @property
    def runs_ensemble(self) -> bool:
        """Several members (``trainer.ensemble`` >= 2) rather than one training run."""
        return self.ensemble is not None and self.ensemble >= 2

    def for_member(self, member: int) -> "TrainSettings":
        """These settings for ensemble member ``member`` (0-based) alone: seed ``seed + member``
        and no ensemble, read again from a config that says so (so that ``data.split_seed:
        ${seed}`` follows the member's seed, and the member's saved config trains it again)."""
        config = copy.deepcopy(self.config)
        OmegaConf.set_struct(config, False)
        config.seed = self.seed + int(member)
        config.trainer.ensemble = None
        return TrainSettings.from_cfg(config)

    @property
    def runs_every_fold(self) -> bool:
        """Cross-validation over all folds (each a sub-run) rather than one training run."""
        return self.cv_folds is not None and self.cv_fold is None

    def for_fold(self, fold: int) -> "TrainSettings":
        """These settings for fold ``fold`` alone; its saved config names the fold, so resuming
        the fold's run directory trains the same fold."""
        config = copy.deepcopy(self.config)
        OmegaConf.set_struct(config, False)
        config.trainer.cv_fold = int(fold)
        return replace(self, cv_fold=int(fold), config=config)

    @property
    def maximise(self) -> bool:
        """Whether a larger ``monitor`` value is better (accuracies) or a smaller one (losses)."""
        return "acc" in self.monitor

    @property
    def keras_verbosity(self) -> int:
        """``verbose`` as ``model.fit`` takes it: 0, 1 (progress bar) or 2 (a line per epoch)."""
        return {0: 0, 1: 1}.get(self.verbose, 2)


def _schedule_fields(trainer: ConfigReader) -> dict:
    """How long, how fast and against what: epochs to ``monitor``."""
    patience = trainer.value("early_stopping_patience", at_least(0),
                             "a number of epochs or null (never stop early)", optional=True)
    return {
        "epochs": trainer.value("epochs", at_least(1), POSITIVE),
        "batch_size": trainer.value("batch_size", at_least(1), POSITIVE),
        "learning_rate": trainer.value("learning_rate", _above_zero, "a number > 0"),
        # null: no schedule, no floor
        "lr_schedule": trainer.value("lr_schedule", one_of(*LR_SCHEDULES), _one_of(LR_SCHEDULES),
                                     optional=True) or "none",
        "min_lr": trainer.value("min_lr", _at_least_zero, "a rate >= 0 or null (no floor)",
                                optional=True) or 0.0,
        "plateau_factor": trainer.value("plateau_factor", _fraction, "a number between 0 and 1"),
        "plateau_patience": trainer.value("plateau_patience", at_least(0), "a number of epochs"),
        "early_stopping_patience": patience or None,  # 0 too: never stop early
        "monitor": trainer.value("monitor", one_of(*MONITORS), _one_of(MONITORS)),
    }


def _run_fields(trainer: ConfigReader) -> dict:
    """How the run goes: augmentation, precision, devices, resumption, verbosity."""
    augment = trainer.block("augment", "an augment block")
    enabled = augment.value("enabled", flag, "true or false")
    resume = trainer.value("resume", text, "a run directory or null", optional=True)
    return {
        "max_shift": augment.value("max_shift", at_least(0), "a number of voxels") if enabled else 0,
        "mixed_precision": trainer.value("mixed_precision", flag, "true or false"),
        "deterministic": trainer.value("deterministic", flag, "true or false"),
        # null means auto
        "distribution": trainer.value("distribution", _distribution, _one_of(DISTRIBUTIONS),
                                      optional=True) or "auto",
        "resume": Path(resume) if resume else None,
        "verbose": trainer.value("verbose", at_least(0), "0 (silent), 1 or 2"),
    }


def _later_fields(trainer: ConfigReader) -> dict:
    """Precise BN, baselines, k-fold, ensembles and the starting weights: the config saved by a
    run made before they existed lacks them, and resuming it must go on as it started (without
    them)."""
    precise_bn, batches = _precise_bn(trainer)
    init_from = trainer.value("init_from", text, "a training run directory, a .keras file or null",
                              optional=True) if trainer.has("init_from") else None
    baselines = trainer.raw("baselines", "a baselines block") if trainer.has("baselines") else None
    return {
        "precise_bn": precise_bn,
        "precise_bn_batches": batches,
        "baselines": BaselineSettings.from_cfg(baselines),
        "cv_folds": trainer.value("cv_folds", at_least(2), "null (the data stage's split) or k >= 2 "
                                  "folds", optional=True) if trainer.has("cv_folds") else None,
        "cv_fold": trainer.value("cv_fold", integer, "a fold number or null (every fold)",
                                 optional=True) if trainer.has("cv_fold") else None,
        "ensemble": trainer.value("ensemble", at_least(1), "null or 1 (one model) or N >= 2 "
                                  "members", optional=True) if trainer.has("ensemble") else None,
        "init_from": Path(init_from) if init_from else None,
    }


def _precise_bn(trainer: ConfigReader) -> tuple[bool, int | None]:
    """``trainer.precise_bn`` as (enabled, batches): the group, or a plain true/false (typed as
    ``trainer.precise_bn=false``); off when absent or null."""
    value = trainer.value("precise_bn", _switch_or_group, "true, false or "
                          "trainer.precise_bn.enabled=<true|false>",
                          optional=True) if trainer.has("precise_bn") else None
    if value is None or isinstance(value, bool):
        return bool(value), None
    group = trainer.block("precise_bn", "a precise_bn block")
    return (group.value("enabled", flag, "true or false"),
            group.value("batches", at_least(1), "a positive number or null (all training batches)",
                        optional=True))


def _switch_or_group(value):
    if not isinstance(value, (bool, Mapping)):
        raise ValueError(value)
    return value


def _distribution(value) -> str:
    """Any case: ``AUTO`` is ``auto``."""
    return one_of(*DISTRIBUTIONS)(text(value).lower())


def _above_zero(value) -> float:
    rate = number(value)
    if not rate > 0:
        raise ValueError(value)
    return rate


def _at_least_zero(value) -> float:
    rate = number(value)
    if rate < 0:
        raise ValueError(value)
    return rate


def _fraction(value) -> float:
    factor = number(value)
    if not 0 < factor < 1:
        raise ValueError(value)
    return factor


def _one_of(allowed) -> str:
    return f"one of {', '.join(allowed)}"

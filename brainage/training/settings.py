"""The training stage's settings, read once from the composed ``train`` config.

Every value comes from the YAML (``configs/train.yaml``, ``configs/trainer/default.yaml``,
``configs/model/``, ``configs/data/``); nothing here repeats a default.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from brainage.errors import TrainError
from brainage.model import ModelSettings
from brainage.training.baselines.settings import BaselineSettings
from brainage.training.distribution import DISTRIBUTIONS

LR_SCHEDULES = ("none", "cosine", "plateau")
MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy", "val_mae", "mae")
# What a regression run logs besides the loss (mean absolute error in years).
REGRESSION_MONITORS = ("val_loss", "loss", "val_mae", "mae")


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
    model: ModelSettings
    data: DictConfig
    config: DictConfig

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> "TrainSettings":
        """Read and check the ``train`` config.

        Raises
        ------
        TrainError
            A setting outside its allowed values.
        """
        trainer = cfg.trainer
        augment = trainer.augment
        patience = trainer.early_stopping_patience
        # .get: the config saved by a run made before precise BN, baselines and k-fold existed
        # lacks them; resuming it must go on as it started (without them).
        precise_bn, batches = _precise_bn(trainer.get("precise_bn"))
        settings = cls(
            seed=int(cfg.seed),
            epochs=int(trainer.epochs),
            batch_size=int(trainer.batch_size),
            learning_rate=float(trainer.learning_rate),
            lr_schedule=str(trainer.lr_schedule or "none"),  # null means no schedule
            min_lr=float(trainer.min_lr or 0.0),              # null means no floor
            plateau_factor=float(trainer.plateau_factor),
            plateau_patience=int(trainer.plateau_patience),
            early_stopping_patience=int(patience) if patience else None,
            monitor=str(trainer.monitor),
            max_shift=int(augment.max_shift) if augment.enabled else 0,
            mixed_precision=bool(trainer.mixed_precision),
            deterministic=bool(trainer.deterministic),
            distribution=str(trainer.distribution or "auto").lower(),  # null means auto
            resume=Path(trainer.resume) if trainer.resume else None,
            verbose=int(trainer.verbose),
            stream_workers=int(cfg.data.stream.workers),
            stream_prefetch=int(cfg.data.stream.prefetch),
            precise_bn=precise_bn,
            precise_bn_batches=None if batches is None else int(batches),
            baselines=BaselineSettings.from_cfg(trainer.get("baselines")),
            cv_folds=_optional_int(trainer.get("cv_folds")),
            cv_fold=_optional_int(trainer.get("cv_fold")),
            model=ModelSettings.from_cfg(cfg.model),
            data=cfg.data,
            config=cfg,
        )
        settings._check()
        return settings

    def _check(self) -> None:
        choices = [("lr_schedule", self.lr_schedule, LR_SCHEDULES),
                   ("monitor", self.monitor, MONITORS),
                   ("distribution", self.distribution, DISTRIBUTIONS)]
        for key, value, allowed in choices:
            if value not in allowed:
                raise TrainError(f"trainer.{key}={value!r}; expected one of {', '.join(allowed)}")
        self._check_task()
        for key in ("epochs", "batch_size", "stream_workers", "stream_prefetch"):
            if getattr(self, key) < 1:
                where = f"data.stream.{key[7:]}" if key.startswith("stream") else f"trainer.{key}"
                raise TrainError(f"{where}={getattr(self, key)}; expected a positive number")
        if not self.learning_rate > 0:
            raise TrainError(f"trainer.learning_rate={self.learning_rate}; expected > 0")
        if self.precise_bn_batches is not None and self.precise_bn_batches < 1:
            raise TrainError(f"trainer.precise_bn.batches={self.precise_bn_batches}; expected a "
                             "positive number or null (all training batches)")
        self._check_folds()

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
        if folds is not None and folds < 2:
            raise TrainError(f"trainer.cv_folds={folds}; expected null (the data stage's split) "
                             "or k >= 2 folds")
        if fold is not None and (folds is None or not 0 <= fold < folds):
            raise TrainError(f"trainer.cv_fold={fold} needs trainer.cv_folds=k with "
                             f"0 <= cv_fold < k (cv_folds={folds})")

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


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


def _precise_bn(value) -> tuple[bool, int | None]:
    """``trainer.precise_bn`` as (enabled, batches): the group, or a plain true/false (typed as
    ``trainer.precise_bn=false``)."""
    if value is None or isinstance(value, bool):
        return bool(value), None
    if not hasattr(value, "get"):
        raise TrainError(f"trainer.precise_bn={value!r}; expected true, false or "
                         "trainer.precise_bn.enabled=<true|false>")
    return bool(value.get("enabled", True)), value.get("batches")

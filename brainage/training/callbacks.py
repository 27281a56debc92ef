"""The training stage's epoch callbacks, each keeping its state in the run's :class:`RunState`.

Early stopping, best-epoch tracking and the plateau schedule live here rather than in Keras's
EarlyStopping, ModelCheckpoint and a bare ReduceLROnPlateau so that their state (best value, epochs
without improvement, plateau counters) is saved with every epoch's checkpoint and a resumed run
continues it. :func:`stage_callbacks` gives them in the order they must run; a callback that must
act before validation (it sees ``on_test_begin``) goes after :class:`EpochClock`.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import keras

from brainage.errors import TrainError
from brainage.runs.cli import raise_if_terminated
from brainage.training.checkpoint import CHECKPOINT_DIR, RunState
from brainage.training.outputs import write_history
from brainage.training.precise_bn import PreciseBatchNorm
from brainage.training.settings import TrainSettings

log = logging.getLogger(__name__)

LOGGED = ("loss", "accuracy", "val_loss", "val_accuracy")  # a classifier's; settings.logged


def stage_callbacks(settings: TrainSettings, state: RunState, run_dir: Path, train_seq,
                    precise_bn_batches=None) -> list:
    """The stage's callbacks, in order: data order, clock, precise BN (when
    ``precise_bn_batches``, the training split as it reads it, is given), plateau schedule, best
    epoch, checkpoint, progress bar, the epoch's log line, the SIGTERM check."""
    clock = EpochClock()
    callbacks = [EpochDataOrder(train_seq), clock]
    if precise_bn_batches is not None:
        # Before validation, so validation, the best epoch and every checkpoint see its statistics.
        callbacks.append(PreciseBatchNorm(precise_bn_batches, settings.precise_bn_batches))
    if settings.lr_schedule == "plateau":
        callbacks.append(ResumablePlateau(
            state, monitor=settings.monitor, mode="max" if settings.maximise else "min",
            factor=settings.plateau_factor, patience=settings.plateau_patience,
            min_lr=settings.min_lr, verbose=0))
    callbacks += [
        BestEpoch(state, settings.monitor, settings.maximise, settings.early_stopping_patience,
                  settings.epochs),
        EpochCheckpoint(state, run_dir, clock, settings.logged),
        # Placed explicitly so that the epoch's log line follows the finished bar.
        keras.callbacks.ProgbarLogger(),
        EpochReport(state, settings.epochs, settings.monitor, settings.logged[1]),
        StopOnSigterm(),
    ]
    return callbacks


class StopOnSigterm(keras.callbacks.Callback):
    """Stops training at the next batch once SIGTERM has arrived, even where the exception its
    handler raised was swallowed (Keras's model.save, inside :class:`EpochCheckpoint`, holds a bare
    ``except:``): without this the run would go on to its last epoch and finish. Last, so that an
    epoch whose checkpoint swallowed it is checkpointed whole first."""

    def on_train_batch_end(self, batch, logs=None):
        raise_if_terminated()

    def on_test_batch_end(self, batch, logs=None):
        raise_if_terminated()

    def on_epoch_end(self, epoch, logs=None):
        raise_if_terminated()


class EpochDataOrder(keras.callbacks.Callback):
    """Tells the training sequence the epoch: its order and shifts are functions of (seed, epoch),
    so a resumed run continues the same sequence."""

    def __init__(self, sequence):
        super().__init__()
        self.sequence = sequence

    def on_epoch_begin(self, epoch, logs=None):
        self.sequence.set_epoch(epoch)


class EpochClock(keras.callbacks.Callback):
    """The epoch's learning rate, wall time, and the time of its training steps alone."""

    def __init__(self):
        super().__init__()
        self.lr = None
        self.train_seconds = None
        self._epoch_start = self._train_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self.lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.train_seconds = None
        self._epoch_start = self._train_start = time.perf_counter()

    def on_test_begin(self, logs=None):
        # Validation runs at the end of each epoch: the time since the epoch began is training.
        if self._train_start is not None:
            self.train_seconds = time.perf_counter() - self._train_start
            self._train_start = None

    def elapsed(self) -> float:
        """Seconds since the epoch began."""
        return time.perf_counter() - self._epoch_start


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters are kept in ``state.plateau`` and restored on resume
    (Keras's resets them when training begins)."""

    def __init__(self, state: RunState, **kwargs):
        super().__init__(**kwargs)
        self.state = state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.state.plateau:
            self.wait = self.state.plateau["wait"]
            self.best = self.state.plateau["best"]
            self.cooldown_counter = self.state.plateau["cooldown_counter"]

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.state.plateau = {"wait": int(self.wait), "best": float(self.best),
                              "cooldown_counter": int(self.cooldown_counter)}


class BestEpoch(keras.callbacks.Callback):
    """The best value of ``monitor`` and its epoch, epochs without improvement, early stopping.

    ``patience`` None never stops early; a run never counts as stopped early on its last epoch.
    """

    def __init__(self, state: RunState, monitor: str, maximise: bool, patience: int | None,
                 epochs: int):
        super().__init__()
        self.state, self.monitor, self.maximise = state, monitor, maximise
        self.patience, self.epochs = patience, epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        current = logs.get(self.monitor)
        if current is None:
            raise TrainError(f"trainer.monitor={self.monitor!r} is not logged; available: "
                             f"{', '.join(sorted(logs))}")
        state = self.state
        best = state.best_value
        improved = current == current and (  # NaN never improves
            best is None or (current > best if self.maximise else current < best))
        if improved:
            state.best_value, state.best_epoch, state.wait = float(current), epoch + 1, 0
        else:
            state.wait += 1
        state.stopped_early = (self.patience is not None and state.wait >= self.patience
                               and epoch + 1 < self.epochs)
        if state.stopped_early:
            self.model.stop_training = True


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: the best weights (when it improved), the full model, ``state.json``
    and ``history.csv``. ``state.json`` is replaced only after the files it names exist; the
    files it no longer names are removed after it."""

    def __init__(self, state: RunState, run_dir: Path, clock: EpochClock, logged=LOGGED):
        super().__init__()
        self.state, self.run_dir, self.clock = state, Path(run_dir), clock
        self.logged = tuple(logged)
        self.checkpoint_dir = self.run_dir / CHECKPOINT_DIR

    def on_epoch_end(self, epoch, logs=None):
        logs, state, model = logs or {}, self.state, self.model
        seconds = self.clock.elapsed()
        stale = [state.last_model]
        if state.best_epoch == epoch + 1:
            stale.append(state.best_weights)
            state.best_weights = f"best_epoch{epoch + 1:04d}.weights.h5"
            model.save_weights(self.checkpoint_dir / state.best_weights)
        state.last_model = f"epoch{epoch + 1:04d}.keras"
        model.save(self.checkpoint_dir / state.last_model)
        state.epochs_done = epoch + 1
        state.history.append({"epoch": epoch + 1, **{key: float(logs[key]) for key in self.logged},
                              "lr": self.clock.lr, "seconds": seconds})
        train_seconds = self.clock.train_seconds
        state.train_step_seconds.append(seconds if train_seconds is None else train_seconds)
        state.save(self.checkpoint_dir)
        for name in stale:
            if name and name not in (state.best_weights, state.last_model):
                (self.checkpoint_dir / name).unlink(missing_ok=True)
        write_history(self.run_dir / "history.csv", state.history)


class EpochReport(keras.callbacks.Callback):
    """One log line per epoch (losses, accuracies, learning rate, seconds, best mark) and the
    reason when training stops early."""

    def __init__(self, state: RunState, epochs: int, monitor: str, metric: str = "accuracy"):
        super().__init__()
        self.state, self.epochs, self.monitor, self.metric = state, epochs, monitor, metric

    def on_epoch_end(self, epoch, logs=None):
        state, row = self.state, self.state.history[-1]
        short = "acc" if self.metric == "accuracy" else self.metric
        log.info("epoch %d/%d  loss %.4f  %s %.3f  val_loss %.4f  val_%s %.3f  lr %.2e  %.1f s%s",
                 row["epoch"], self.epochs, row["loss"], short, row[self.metric], row["val_loss"],
                 short, row[f"val_{self.metric}"], row["lr"], row["seconds"],
                 "  *best" if state.best_epoch == row["epoch"] else "")
        if state.stopped_early:
            log.info("early stopping: %s has not improved for %d epochs (best: epoch %d)",
                     self.monitor, state.wait, state.best_epoch)

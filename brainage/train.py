"""Training stage: the Taylor 2019 CNN on the prepared cohort, evaluated on the held-out test split.

    python -m brainage.train                                  # quick experiment (default)
    python -m brainage.train experiment=seed_taylor2019       # the seed's set-up
    python -m brainage.train trainer.resume=outputs/train/<run>   # continue an interrupted run

Writes into the Hydra run directory: ``model.keras`` (best validation epoch), ``metrics.json``,
``history.csv``, ``split.csv``, ``data.json`` (grid and bin edges for the explain stage),
``test_predictions.csv`` (per test subject: true and predicted bin, logits),
``training_curves.png``, ``confusion_matrix.png`` and ``checkpoint/`` (the last epoch's full state,
which ``trainer.resume`` continues from). A run directory is never overwritten.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from brainage.data.cohort import bin_labels
from brainage.errors import RunDirError, TrainError
from brainage.runs import check_fresh_run_dir

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
CONFIG_FILE = "config.yaml"
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
# Seed 000, section 3.1: test accuracy per bin (10-39, 40-69, 70-100) and overall after 34 epochs.
SEED_BIN_EDGES = [10, 40, 70, 101]
SEED_PER_BIN_ACCURACY = [0.8158, 0.3509, 1.0]
SEED_ACCURACY = 0.7222


@dataclass
class RunState:
    """Everything besides the model and optimizer that a resumed run needs to continue exactly.

    Saved as ``checkpoint/state.json`` after every epoch, next to ``checkpoint/<last_model>``.
    """

    epochs_done: int = 0
    history: list = field(default_factory=list)
    train_step_seconds: list = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int | None = None
    best_weights: str | None = None
    last_model: str | None = None
    wait: int = 0
    stopped_early: bool = False
    plateau: dict | None = None

    def save(self, checkpoint_dir: Path) -> None:
        tmp = checkpoint_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, allow_nan=True))
        os.replace(tmp, checkpoint_dir / STATE_FILE)

    @classmethod
    def load(cls, checkpoint_dir: Path) -> "RunState":
        return cls(**json.loads((checkpoint_dir / STATE_FILE).read_text()))


def train(cfg: DictConfig, run_dir: str | Path | None = None, *, data=None,
          callbacks=()) -> dict:
    """Train, checkpoint and evaluate the network described by ``cfg``.

    Parameters
    ----------
    cfg : DictConfig
        The composed ``train`` config (groups ``data``, ``model``, ``trainer``, and ``seed``).
    run_dir : path, optional
        Where the run's files go. Default: Hydra's ``runtime.output_dir``. Ignored when
        ``trainer.resume`` names the run to continue (its files are written there).
    data : PreparedData, optional
        Use this cohort instead of running the data stage (tests, notebooks).
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks, run after the stage's own (which checkpoint before them).

    Returns
    -------
    dict
        The contents of ``metrics.json``.

    Raises
    ------
    DataError
        From the data stage: bad participants table, images, bins or split.
    TrainError
        The run directory is already used, there is nothing to resume, or the model does not fit
        the data.
    """
    resume = cfg.trainer.get("resume")
    if resume:
        run_dir, cfg = _open_resumed_run(Path(resume), cfg)
    else:
        run_dir = _fresh_run_dir(run_dir)
    _request_determinism(bool(cfg.trainer.get("deterministic", True)))

    import keras

    seed = int(cfg.seed)
    keras.utils.set_random_seed(seed)
    backend = keras.backend.backend()
    devices = _backend_devices(backend)
    log.info("run directory %s; backend %s on %s", run_dir, backend, ", ".join(devices))

    if data is None:
        from brainage.data.cohort import prepare_data

        data = prepare_data(cfg.data, seed=seed, run_dir=run_dir)
    state = _start_run_files(run_dir, cfg, data, resumed=bool(resume))
    distribution = _distribution(cfg, backend)
    # Model, optimizer state, fitting and prediction all live on the distribution's devices.
    with distribution.scope():
        return _fit_and_evaluate(cfg, data, state, run_dir, devices, distribution,
                                 callbacks=callbacks)


def _fit_and_evaluate(cfg, data, state: RunState, run_dir: Path, devices: list, distribution,
                      callbacks=()) -> dict:
    """The part of :func:`train` that runs inside the distribution scope."""
    resume = cfg.trainer.get("resume")
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    seed = int(cfg.seed)
    backend = distribution.backend
    model = _compiled_model(cfg, data, state, checkpoint_dir, devices)
    train_seq, val_seq, test_seq = _sequences(cfg, data, seed)
    class_weight = _class_weight(data)
    train_data, fit_class_weight = distribution.batches(train_seq, class_weight)
    val_data, _ = distribution.batches(val_seq)
    test_data, _ = distribution.batches(test_seq)
    n_train = len(data.indices("train"))
    log.info(
        "train %d / val %d / test %d volumes of %s, %d parameters, batch %d, %d epochs%s",
        n_train, len(data.indices("val")), len(data.indices("test")),
        "x".join(str(s) for s in data.input_shape[:3]), model.count_params(),
        int(cfg.trainer.batch_size), int(cfg.trainer.epochs),
        f", resuming after epoch {state.epochs_done}" if resume else "",
    )

    epochs = int(cfg.trainer.epochs)
    if state.epochs_done < epochs and not state.stopped_early:
        stage_callbacks = _stage_callbacks(cfg, model, state, checkpoint_dir, run_dir, train_seq)
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=epochs,
            initial_epoch=state.epochs_done,
            class_weight=fit_class_weight,
            # The sequence shuffles itself by (seed, epoch); Keras's own batch shuffle would draw
            # from Python's global RNG, which a resumed process does not share.
            shuffle=False,
            callbacks=stage_callbacks + list(callbacks),
            verbose=_keras_verbosity(cfg),
        )

    if state.best_weights:
        model.load_weights(checkpoint_dir / state.best_weights)
    model.save(run_dir / "model.keras")

    start = time.perf_counter()
    # Padding that splits a short batch evenly over devices comes last: keep the real rows.
    logits = model.predict(test_data, verbose=0)[:len(data.indices("test"))]
    predict_seconds = time.perf_counter() - start
    y_true = data.labels("test")
    y_pred = logits.argmax(axis=-1)

    metrics = classification_metrics(y_true, y_pred, data.n_classes)
    labels = bin_labels(data.bin_edges)
    epoch_seconds = [row["seconds"] for row in state.history]
    steady = state.train_step_seconds[1:] or state.train_step_seconds
    metrics.update(
        bin_edges=[float(e) for e in data.bin_edges],
        bin_labels=labels,
        n_per_bin_split=_counts_per_bin(data),
        class_weights=class_weight and {str(k): v for k, v in class_weight.items()},
        epochs_run=state.epochs_done,
        best_epoch=state.best_epoch,
        stopped_early=state.stopped_early,
        monitor=str(cfg.trainer.monitor),
        best_monitor_value=state.best_value,
        seed=seed,
        resumed=bool(resume),
        timings={
            "backend": backend,
            "devices": devices,
            "distribution": distribution.kind,
            "replicas": distribution.n_replicas,
            "dtype_policy": model.dtype_policy.name,
            "train_seconds": float(sum(epoch_seconds)),
            "seconds_per_epoch": float(sum(epoch_seconds) / max(len(epoch_seconds), 1)),
            # Training steps only (validation excluded); the first epoch includes compilation.
            "train_volumes_per_s": _rate(n_train * len(state.train_step_seconds),
                                         sum(state.train_step_seconds)),
            "train_volumes_per_s_after_first_epoch": _rate(n_train * len(steady), sum(steady)),
            "predict_volumes_per_s": _rate(len(y_true), predict_seconds),
        },
    )
    _write_history(run_dir / "history.csv", state.history)
    _write_predictions(run_dir / "test_predictions.csv", data, logits)
    plot_training_curves(state.history, run_dir / "training_curves.png", state.best_epoch)
    plot_confusion_matrix(metrics["confusion_matrix"], labels, run_dir / "confusion_matrix.png")
    # metrics.json last: its presence marks a finished run.
    (run_dir / "metrics.json").write_text(json.dumps(_json_safe(metrics), indent=2))
    log.info("test results (%s)\n%s", run_dir, format_summary(metrics))
    return metrics


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> None:
    """Command line: ``python -m brainage.train key=value ...`` (see ``configs/train.yaml``)."""
    from brainage.runs import run_stage

    run_stage(train, cfg)


# --------------------------------------------------------------------------- metrics and reports

def classification_metrics(y_true, y_pred, n_classes: int) -> dict:
    """Accuracy, per-class accuracy (recall), balanced accuracy and the confusion matrix.

    ``confusion_matrix[i][j]`` counts volumes of true bin ``i`` predicted as bin ``j``. A bin
    without test volumes has accuracy None and is left out of the balanced accuracy.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    support = cm.sum(axis=1)
    per_bin = [float(cm[k, k] / support[k]) if support[k] else None for k in range(n_classes)]
    present = [a for a in per_bin if a is not None]
    return {
        "test_accuracy": float((y_true == y_pred).mean()) if len(y_true) else None,
        "test_balanced_accuracy": float(sum(present) / len(present)) if present else None,
        "test_per_bin_accuracy": per_bin,
        "test_n": int(len(y_true)),
        "confusion_matrix": cm.tolist(),
    }


def format_summary(metrics: dict) -> str:
    """A small table of test accuracy per bin next to the seed's figures (seed 000, section 3.1)."""
    labels = metrics["bin_labels"]
    seed_comparable = [float(e) for e in metrics["bin_edges"]] == [float(e) for e in SEED_BIN_EDGES]
    counts = metrics["confusion_matrix"]

    def pct(value):
        return "     -" if value is None else f"{100 * value:6.2f}"

    lines = [f"{'age bin':<14}{'n test':>7}{'accuracy %':>12}{'seed 000 %':>12}"]
    for k, label in enumerate(labels):
        seed = SEED_PER_BIN_ACCURACY[k] if seed_comparable else None
        lines.append(f"{label:<14}{sum(counts[k]):>7}{pct(metrics['test_per_bin_accuracy'][k]):>12}"
                     f"{pct(seed):>12}")
    lines.append(f"{'overall':<14}{metrics['test_n']:>7}{pct(metrics['test_accuracy']):>12}"
                 f"{pct(SEED_ACCURACY if seed_comparable else None):>12}")
    lines.append(f"{'balanced':<14}{'':>7}{pct(metrics['test_balanced_accuracy']):>12}"
                 f"{pct(None):>12}")
    return "\n".join(lines)


def plot_training_curves(history: list, path: Path, best_epoch: int | None = None) -> None:
    """Loss and accuracy per epoch, training and validation, with the best epoch marked."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4), layout="constrained")
    epochs = [row["epoch"] for row in history]
    for ax, key, title in zip(fig.subplots(1, 2), ["loss", "accuracy"], ["loss", "accuracy"]):
        ax.plot(epochs, [row[key] for row in history], "o-", label="train")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], "o-", label="validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.legend()
    fig.savefig(path, dpi=100)


def plot_confusion_matrix(matrix, labels, path: Path) -> None:
    """Counts per (true bin, predicted bin), shaded by the share of the true bin."""
    from matplotlib.figure import Figure

    cm = np.asarray(matrix, dtype=float)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(4.5, 4), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted age bin")
    ax.set_ylabel("true age bin")
    ax.set_title(f"test set: {np.trace(cm):.0f} of {cm.sum():.0f} correct")
    fig.colorbar(image, ax=ax, label="share of true bin")
    fig.savefig(path, dpi=100)


# --------------------------------------------------------------------------- run directory

def _fresh_run_dir(run_dir) -> Path:
    if run_dir is None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            raise TrainError("train(cfg) outside a Hydra run needs an explicit run_dir")
        run_dir = HydraConfig.get().runtime.output_dir
    run_dir = Path(run_dir)
    try:
        check_fresh_run_dir(run_dir, markers=("model.keras", "metrics.json"))
    except RunDirError as err:
        raise TrainError(str(err)) from err
    if (run_dir / CHECKPOINT_DIR / STATE_FILE).exists():
        raise TrainError(f"{run_dir} holds an interrupted run; continue it with "
                         f"trainer.resume={run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _open_resumed_run(run_dir: Path, cfg: DictConfig) -> tuple[Path, DictConfig]:
    """The run to continue and the config it started with (other command-line settings ignored)."""
    if not (run_dir / CHECKPOINT_DIR / STATE_FILE).exists():
        raise TrainError(f"trainer.resume={run_dir}: no checkpoint to resume "
                         f"(expected {run_dir / CHECKPOINT_DIR / STATE_FILE})")
    if (run_dir / "metrics.json").exists():
        raise TrainError(f"trainer.resume={run_dir}: that run already finished (metrics.json)")
    saved = OmegaConf.load(run_dir / CHECKPOINT_DIR / CONFIG_FILE)
    saved.trainer.resume = str(run_dir)
    saved.trainer.verbose = cfg.trainer.get("verbose", saved.trainer.get("verbose", 1))
    log.info("resuming %s with the configuration it started with (%s); other command-line "
             "settings are ignored", run_dir, run_dir / CHECKPOINT_DIR / CONFIG_FILE)
    return run_dir, saved


def _start_run_files(run_dir: Path, cfg: DictConfig, data, resumed: bool) -> RunState:
    """Write split.csv, data.json and the saved config; on resume check the split is unchanged."""
    import pandas as pd

    checkpoint_dir = run_dir / CHECKPOINT_DIR
    split = data.split_table()
    if resumed:
        before = pd.read_csv(run_dir / "split.csv", dtype={"subject_id": str})
        now = split.reset_index(drop=True)
        same = len(before) == len(now) and all(
            (before[c].astype(str).to_numpy() == now[c].astype(str).to_numpy()).all()
            for c in ("subject_id", "split"))
        if not same:
            raise TrainError(f"trainer.resume={run_dir}: the data stage now gives a different "
                             f"split than {run_dir / 'split.csv'}; the run cannot be continued")
        return RunState.load(checkpoint_dir)

    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    split.to_csv(run_dir / "split.csv", index=False)
    (run_dir / "data.json").write_text(json.dumps(_json_safe({
        "grid": data.grid.to_dict(),
        "bin_edges": [float(e) for e in data.bin_edges],
        "bin_labels": bin_labels(data.bin_edges),
        "n_classes": data.n_classes,
        "input_shape": list(data.input_shape),
        "class_weights": None if data.class_weights is None
        else {str(k): float(v) for k, v in data.class_weights.items()},
        "n_excluded": int(len(data.exclusions)),
    }), indent=2))
    try:
        text = OmegaConf.to_yaml(cfg, resolve=True)
    except Exception:  # an interpolation only Hydra can resolve: keep it as written
        text = OmegaConf.to_yaml(cfg)
    (checkpoint_dir / CONFIG_FILE).write_text(text)
    return RunState()


# --------------------------------------------------------------------------- model and data

def _compiled_model(cfg: DictConfig, data, state: RunState, checkpoint_dir: Path, devices: list):
    import keras

    from brainage.model import model_from_config

    if state.last_model:
        # Weights, optimizer state (moments, step count, loss scale) and the compiled loss.
        return keras.saving.load_model(checkpoint_dir / state.last_model)

    policy = "float32"
    if cfg.trainer.get("mixed_precision", False):
        if any("gpu" in d.lower() for d in devices):
            policy = "mixed_float16"
        else:  # float16 kernels (e.g. TF's AvgPool3D) are missing or slow on CPUs
            log.warning("trainer.mixed_precision=true needs a GPU; training in float32")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = model_from_config(cfg.model, data.input_shape, n_classes=data.n_classes)
    except ValueError as err:
        raise TrainError(f"model: {err}") from err
    finally:
        keras.config.set_dtype_policy(previous)

    lr = float(cfg.trainer.learning_rate)
    schedule = str(cfg.trainer.get("lr_schedule", "none") or "none")
    if schedule == "cosine":
        steps = int(cfg.trainer.epochs) * math.ceil(len(data.indices("train"))
                                                    / int(cfg.trainer.batch_size))
        min_lr = float(cfg.trainer.get("min_lr", 0.0) or 0.0)
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(steps, 1),
                                                    alpha=min(min_lr / lr, 1.0))
    elif schedule not in ("none", "plateau"):
        raise TrainError(f"trainer.lr_schedule={schedule!r}: expected none, cosine or plateau")
    # compile() wraps the optimizer in a LossScaleOptimizer under mixed_float16.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def _distribution(cfg: DictConfig, backend: str):
    """``trainer.distribution`` resolved on this machine; the global batch must split evenly."""
    from brainage.distribute import resolve_distribution
    from brainage.errors import DistributionError

    try:
        distribution = resolve_distribution(cfg.trainer.get("distribution", "auto"), backend)
        per_device = distribution.per_replica_batch(cfg.trainer.batch_size)
    except DistributionError as err:
        raise TrainError(str(err)) from err
    if distribution.n_replicas > 1:
        log.info("%s: global batch %d = %d x %d per device", distribution.describe(),
                 int(cfg.trainer.batch_size), distribution.n_replicas, per_device)
    return distribution


def _sequences(cfg: DictConfig, data, seed: int):
    from brainage.data.stream import VolumeSequence

    batch = int(cfg.trainer.batch_size)
    stream = dict(workers=int(OmegaConf.select(cfg, "data.stream.workers", default=1) or 1),
                  max_queue_size=int(OmegaConf.select(cfg, "data.stream.prefetch", default=4) or 4))
    augment = cfg.trainer.get("augment") or {}
    # Augmentation is small translations only. No left-right flips: the brain is not symmetric
    # (ageing effects and anatomy are lateralised), and the relevance maps are read in world space,
    # where a flipped training image would teach the network to ignore the side of an effect.
    max_shift = int(augment.get("max_shift", 0)) if augment.get("enabled", False) else 0
    labels = data.labels()
    train_seq = VolumeSequence(data.volumes, data.indices("train"), labels, batch, shuffle=True,
                               seed=seed, max_shift=max_shift, **stream)
    val_seq = VolumeSequence(data.volumes, data.indices("val"), labels, batch, **stream)
    test_seq = VolumeSequence(data.volumes, data.indices("test"), labels, batch, **stream)
    return train_seq, val_seq, test_seq


def _class_weight(data) -> dict | None:
    if not data.class_weights:
        return None
    return {int(k): float(v) for k, v in data.class_weights.items()}


def _counts_per_bin(data) -> dict:
    counts = {}
    for split in ("train", "val", "test"):
        labels = data.labels(split)
        counts[split] = [int((labels == k).sum()) for k in range(data.n_classes)]
    return counts


# --------------------------------------------------------------------------- callbacks

def _stage_callbacks(cfg, model, state: RunState, checkpoint_dir: Path, run_dir: Path,
                     train_seq) -> list:
    """Epoch order of the data, checkpoint, early stopping, LR on plateau, one line per epoch.

    Early stopping and best-model checkpointing live here rather than in Keras's EarlyStopping and
    ModelCheckpoint so that their state (best value, epochs without improvement) is saved with every
    epoch's checkpoint and a resumed run continues it.
    """
    import keras

    monitor = str(cfg.trainer.get("monitor", "val_loss"))
    maximise = "acc" in monitor
    patience = cfg.trainer.get("early_stopping_patience")
    epochs = int(cfg.trainer.epochs)
    clock = {}

    plateau = None
    result = []
    if str(cfg.trainer.get("lr_schedule", "none")) == "plateau":
        plateau = keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode="max" if maximise else "min",
            factor=float(cfg.trainer.get("plateau_factor", 0.5)),
            patience=int(cfg.trainer.get("plateau_patience", 3)),
            min_lr=float(cfg.trainer.get("min_lr", 0.0) or 0.0), verbose=0)

        def restore_plateau(logs=None):
            # ReduceLROnPlateau resets its counters when training begins; a resumed run keeps them.
            if state.plateau:
                plateau.wait = state.plateau["wait"]
                plateau.best = state.plateau["best"]
                plateau.cooldown_counter = state.plateau["cooldown_counter"]

        result += [plateau, keras.callbacks.LambdaCallback(on_train_begin=restore_plateau)]

    def on_epoch_begin(epoch, logs=None):
        # The data order is a function of (seed, epoch): a resumed run continues the same sequence.
        train_seq.set_epoch(epoch)
        clock["lr"] = _current_lr(model)
        clock["epoch"] = clock["train"] = time.perf_counter()

    def on_test_begin(logs=None):
        # Validation runs at the end of each epoch: the time since the epoch began is training.
        if "train" in clock:
            clock["train_seconds"] = time.perf_counter() - clock.pop("train")

    def on_epoch_end(epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - clock["epoch"]
        current = logs.get(monitor)
        if current is None:
            raise TrainError(f"trainer.monitor={monitor!r} is not logged; available: "
                             f"{', '.join(sorted(logs))}")
        improved = current == current and (  # NaN never improves
            state.best_value is None
            or (current > state.best_value if maximise else current < state.best_value))
        row = {key: float(logs[key]) for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
        row = {"epoch": epoch + 1, **row, "lr": clock["lr"], "seconds": seconds}

        stale = []
        if improved:
            stale.append(state.best_weights)
            state.best_weights = f"best_epoch{epoch + 1:04d}.weights.h5"
            model.save_weights(checkpoint_dir / state.best_weights)
            state.best_value, state.best_epoch, state.wait = float(current), epoch + 1, 0
        else:
            state.wait += 1
        stale.append(state.last_model)
        state.last_model = f"epoch{epoch + 1:04d}.keras"
        model.save(checkpoint_dir / state.last_model)
        state.epochs_done = epoch + 1
        state.history.append(row)
        state.train_step_seconds.append(clock.pop("train_seconds", seconds))
        state.stopped_early = bool(patience) and state.wait >= int(patience) and epoch + 1 < epochs
        if plateau is not None:
            state.plateau = {"wait": int(plateau.wait), "best": float(plateau.best),
                             "cooldown_counter": int(plateau.cooldown_counter)}
        # state.json is replaced atomically after the files it names exist; then the old ones go.
        state.save(checkpoint_dir)
        for name in stale:
            if name and name not in (state.best_weights, state.last_model):
                (checkpoint_dir / name).unlink(missing_ok=True)
        _write_history(run_dir / "history.csv", state.history)

        if state.stopped_early:
            model.stop_training = True

    def report_epoch(epoch, logs=None):
        row = state.history[-1]
        log.info("epoch %d/%d  loss %.4f  acc %.3f  val_loss %.4f  val_acc %.3f  lr %.2e  %.1f s%s",
                 row["epoch"], epochs, row["loss"], row["accuracy"], row["val_loss"],
                 row["val_accuracy"], row["lr"], row["seconds"],
                 "  *best" if state.best_epoch == row["epoch"] else "")
        if state.stopped_early:
            log.info("early stopping: %s has not improved for %d epochs (best: epoch %d)",
                     monitor, state.wait, state.best_epoch)

    # The progress bar is placed explicitly so the one-line summary follows the finished bar.
    result += [
        keras.callbacks.LambdaCallback(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                                       on_test_begin=on_test_begin),
        keras.callbacks.ProgbarLogger(),
        keras.callbacks.LambdaCallback(on_epoch_end=report_epoch),
    ]
    return result


def _current_lr(model) -> float:
    import keras

    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


# --------------------------------------------------------------------------- helpers

def _request_determinism(enabled: bool) -> None:
    """Deterministic kernels where that is cheap: TF op determinism; XLA's flag on JAX GPUs.

    On JAX the flag must be set before JAX starts, so it only takes effect when training is the
    first thing the process does (the command line).
    """
    if not enabled:
        return
    if "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_gpu_deterministic_ops=true").strip()
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _backend_devices(backend: str) -> list:
    if backend == "jax":
        import jax

        return [f"{d.platform}:{d.id} ({getattr(d, 'device_kind', d.platform)})"
                for d in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices()]
    if backend == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
    return [backend]


def _keras_verbosity(cfg) -> int | str:
    verbose = int(cfg.trainer.get("verbose", 1))
    return {0: 0, 1: 1}.get(verbose, 2)


def _write_history(path: Path, history: list) -> None:
    import pandas as pd

    pd.DataFrame(history, columns=HISTORY_COLUMNS).to_csv(path, index=False)


def _write_predictions(path: Path, data, logits) -> None:
    """Per test subject: true and predicted bin and the logits (which subjects to explain)."""
    table = data.split_table().iloc[data.indices("test")].reset_index(drop=True)
    table["predicted_bin"] = logits.argmax(axis=-1)
    table["correct"] = table["predicted_bin"] == table["bin"]
    for k in range(logits.shape[-1]):
        table[f"logit_{k}"] = logits[:, k]
    table.drop(columns="split").to_csv(path, index=False)


def _rate(count: float, seconds: float) -> float | None:
    return float(count / seconds) if seconds > 0 else None


def _json_safe(value):
    """NaN and infinities become null (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


if __name__ == "__main__":
    main()

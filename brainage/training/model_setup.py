"""The network ready to fit: built under its dtype policy and compiled, or reloaded from a checkpoint.

Adam with the configured learning-rate schedule; sparse categorical cross-entropy on the logits and
accuracy as the metric, or for a regression (``model.task``) the MAE or MSE in years and the MAE
as the metric (``mae``).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

from brainage.errors import ModelError, TrainError
from brainage.training.checkpoint import RunState
from brainage.training.inputs import age_scale
from brainage.training.settings import TrainSettings
from brainage.training.warm_start import warm_start

log = logging.getLogger(__name__)


def compiled_model(settings: TrainSettings, data, state: RunState, checkpoint_dir: Path,
                   devices: list):
    """The model to fit: the checkpoint's last epoch when resuming, else a new compiled one,
    started from ``trainer.init_from``'s matching layers if given (recorded in ``state``).

    Raises
    ------
    TrainError
        The network does not fit the data (too small a grid, another number of bins), or
        ``trainer.init_from`` cannot be started from.
    """
    import keras

    if state.last_model:
        # Weights, optimizer state (moments, step count, loss scale) and the compiled loss.
        return keras.saving.load_model(checkpoint_dir / state.last_model)

    policy = dtype_policy(settings.mixed_precision, devices)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = settings.model.build(data.input_shape, n_classes=data.n_classes,
                                     age_scale=age_scale(data) if settings.model.is_regression
                                     else None)
    except ModelError as err:
        raise TrainError(f"model: {err}") from err
    finally:
        keras.config.set_dtype_policy(previous)
    warn_unseen_input(model, data.input_shape)
    if settings.init_from:
        state.init_from = warm_start(model, settings.init_from)
    # compile() wraps the optimizer in a LossScaleOptimizer under mixed_float16.
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate(settings, len(data.indices("train")))),
        **loss_and_metrics(settings),
    )
    return model


def warn_unseen_input(model, input_shape) -> None:
    """Warn when valid poolings leave the input's high-index end out of every output: the
    network never sees it, its maps are zero there and lean to the other side."""
    from brainage.model.parts import exact_crop_sizes, unseen_input  # deferred: imports keras

    unseen = unseen_input(model)
    if not unseen:
        return
    shape = tuple(int(s) for s in input_shape[:3])
    exact = exact_crop_sizes(model, shape)
    log.warning("model: its poolings leave the last %s of the %s input out of every output, so "
                "its relevance maps are zero there and lean to the other side; "
                "data.crop_shape=[%s] pools exactly (docs/training.md#the-crop-and-the-poolings)",
                " and ".join(f"{n} voxels along {axis}" for axis, n in unseen.items()),
                " x ".join(str(s) for s in shape), ",".join(str(s) for s in exact))


def loss_and_metrics(settings: TrainSettings) -> dict:
    """``loss`` and ``metrics`` for ``compile``: cross-entropy and accuracy, or for a regression
    the configured loss in years (``mae`` or ``mse``) and the MAE."""
    import keras

    if not settings.model.is_regression:
        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}
    loss = {"mae": keras.losses.MeanAbsoluteError(),
            "mse": keras.losses.MeanSquaredError()}[settings.model.regression_loss]
    return {"loss": loss, "metrics": [keras.metrics.MeanAbsoluteError(name="mae")]}


def dtype_policy(mixed_precision: bool, devices: list) -> str:
    """``mixed_float16`` when mixed precision is asked for and a GPU is among ``devices``."""
    if not mixed_precision:
        return "float32"
    if any("gpu" in d.lower() for d in devices):
        return "mixed_float16"
    # float16 kernels (e.g. TF's AvgPool3D) are missing or slow on CPUs.
    log.warning("trainer.mixed_precision=true needs a GPU; training in float32")
    return "float32"


def learning_rate(settings: TrainSettings, n_train: int):
    """Adam's learning rate: a number, or a cosine decay to ``min_lr`` over all training steps.

    The ``plateau`` schedule starts from the number; a callback lowers it.
    """
    import keras

    lr = settings.learning_rate
    if settings.lr_schedule != "cosine":
        return lr
    steps = settings.epochs * math.ceil(n_train / settings.batch_size)
    return keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(steps, 1),
                                                  alpha=min(settings.min_lr / lr, 1.0))

"""The networks the stages train: the four-block 3D CNN of Taylor 2019 (seed 000, section 3.1)
and a small residual 3D CNN (:func:`build_resnet3d`), each one Keras functional graph.

Per block ``b`` (1-based) with ``k`` filters::

    block{b}_conv_a  Conv3D(k, 3, relu, valid)
    block{b}_conv_b  Conv3D(k, 3, valid)           linear: BatchNorm sits between it and the ReLU
    block{b}_bn      BatchNormalization
    block{b}_relu    ReLU
    block{b}_pool    AveragePooling3D(2)

then ``flatten`` -> ``dense1`` (Dense(32, relu)) -> ``logits`` (Dense(3), no softmax: the loss
applies it, and relevance starts at the logit). The layer names are stable: the relevance engine
addresses layers by them.

With ``task="regression"`` (issue #13) the head is ``dense1`` -> ``age_standardised`` (Dense(1),
the age in standard deviations of the training ages) -> ``age`` (a fixed, non-trainable Dense(1):
``age = sd * z + mean`` with the training split's mean and SD), so the network learns standardised
age while its output and its loss are in years. The trained model is saved with the two folded
into one Dense(1) ``age`` (:func:`fold_age_head`): the same function, and the plain chain the
relevance methods expect, whose top layer sees only the non-negative ``dense1`` activations (DTD's
z+ rule then passes the whole predicted age down; through the signed standardised age it would
be absorbed wherever that is negative, i.e. for every subject younger than the mean). At 100 x 124 x 104 x 1 the network has 253,291 parameters, 240 of them
the batch-norm moving statistics (non-trainable).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras

from brainage.errors import ModelError

SEED_INPUT_SHAPE = (100, 124, 104, 1)
TASKS = ("classification", "regression")
REGRESSION_LOSSES = ("mae", "mse")


def feature_shape(input_shape: Sequence[int], n_blocks: int, kernel_size: int = 3,
                  pool_size: int = 2) -> tuple:
    """Spatial shape after each block: two valid convolutions, then pooling (floor).

    Raises
    ------
    ModelError
        When the input is too small for ``n_blocks`` blocks; the message names the block and axis.
    """
    spatial = tuple(int(s) for s in input_shape[:3])
    shapes = []
    current = spatial
    for block in range(1, n_blocks + 1):
        after_conv = tuple(s - 2 * (kernel_size - 1) for s in current)
        pooled = tuple(s // pool_size for s in after_conv)
        for axis, (c, p) in enumerate(zip(after_conv, pooled)):
            if c < 1 or p < 1:
                smallest = minimum_input_size(n_blocks, kernel_size, pool_size)
                raise ModelError(
                    f"input shape {spatial} is too small for {n_blocks} blocks: axis {axis} is "
                    f"{current[axis]} voxels at block {block}, which leaves {max(p, 0)} after two "
                    f"{kernel_size}x{kernel_size}x{kernel_size} valid convolutions and "
                    f"pooling by {pool_size}; every axis needs at least {smallest} voxels "
                    f"(or use fewer blocks: model.widths)"
                )
        shapes.append(pooled)
        current = pooled
    return tuple(shapes)


def minimum_input_size(n_blocks: int, kernel_size: int = 3, pool_size: int = 2) -> int:
    """Smallest axis length that survives ``n_blocks`` blocks with at least one voxel."""
    size = 1
    for _ in range(n_blocks):
        size = size * pool_size + 2 * (kernel_size - 1)
    return size


def build_model(input_shape: Sequence[int] = SEED_INPUT_SHAPE,
                widths: Sequence[int] = (8, 16, 32, 64), kernel_size: int = 3,
                dense_units: int = 32, n_classes: int = 3, pool_size: int = 2,
                name: str = "taylor2019", bn_momentum: float = 0.99,
                age_scale: tuple | None = None) -> keras.Model:
    """Build the Taylor 2019 3D CNN.

    The defaults are the seed's network (section 3.1); ``configs/model/taylor2019.yaml`` holds the
    same values for the stages, which build through :class:`ModelSettings`.

    Parameters
    ----------
    input_shape : sequence of int
        ``(X, Y, Z)`` or ``(X, Y, Z, 1)``; the seed's crop is ``(100, 124, 104, 1)``.
    widths : sequence of int
        Filters per block; its length is the number of blocks (the seed has four).
    kernel_size, pool_size : int
        Convolution kernel edge and average-pooling window (both cubic).
    dense_units : int
        Units of the hidden dense layer ``dense1``.
    n_classes : int
        Outputs of ``logits`` (one per age bin).
    name : str
        Model name.
    bn_momentum : float
        Momentum of the batch-norm moving statistics (Keras's default 0.99, as in the seed). They
        start at mean 0, variance 1 and forget that start as ``momentum ** steps``: short runs
        (a few hundred steps) need a lower value such as 0.9, or inference sees other statistics
        than training did.
    age_scale : (mean, sd) or None
        None: the classifier (``logits``). ``(mean, sd)`` of the training ages: the age regressor,
        one output ``age`` in years (``n_classes`` is ignored).

    Returns
    -------
    keras.Model
        Functional model mapping ``(batch, X, Y, Z, 1)`` to ``(batch, n_classes)`` logits (or
        ``(batch, 1)`` ages in years). Layers
        follow the global dtype policy (e.g. ``mixed_float16``) except ``logits``, which stays
        float32 so the loss and the relevance start in full precision.

    Raises
    ------
    ModelError
        When a size is not positive or the input is too small for the number of blocks.
    """
    input_shape = _checked_input_shape(input_shape)
    widths = tuple(int(w) for w in widths)
    _check_sizes(widths, kernel_size, dense_units, n_classes, pool_size, bn_momentum)
    feature_shape(input_shape, len(widths), kernel_size, pool_size)

    inputs = keras.Input(shape=input_shape, name="input")
    x = _backbone(inputs, widths, kernel_size, pool_size, bn_momentum)
    x = keras.layers.Dense(int(dense_units), activation="relu", name="dense1")(x)
    if age_scale is None:
        outputs = keras.layers.Dense(int(n_classes), name="logits", dtype="float32")(x)
    else:
        outputs = age_head(x, *age_scale)
    return keras.Model(inputs, outputs, name=name)


def fold_age_head(model: keras.Model) -> keras.Model:
    """The regressor with ``age_standardised`` and the fixed ``age`` folded into one Dense(1)
    ``age`` (kernel ``sd * W``, bias ``sd * b + mean``): the same outputs, one linear top layer.

    A model without ``age_standardised`` (a classifier, or already folded) is returned as is.
    """
    names = [layer.name for layer in model.layers]
    if "age_standardised" not in names:
        return model
    kernel, bias = model.get_layer("age_standardised").get_weights()
    scale, offset = model.get_layer("age").get_weights()
    sd, mean = float(scale[0, 0]), float(offset[0])
    features = model.get_layer("age_standardised").input
    top = keras.layers.Dense(1, name="age", dtype="float32")
    folded = keras.Model(model.input, top(features), name=model.name)
    top.set_weights([kernel * sd, bias * sd + mean])
    return folded


def _backbone(inputs, widths: tuple, kernel_size: int, pool_size: int, bn_momentum: float):
    """The convolution blocks and ``flatten``: what classifier and regressor share."""
    layers = keras.layers
    x = inputs
    for block, width in enumerate(widths, start=1):
        x = layers.Conv3D(width, kernel_size, padding="valid", activation="relu",
                          name=f"block{block}_conv_a")(x)
        x = layers.Conv3D(width, kernel_size, padding="valid", name=f"block{block}_conv_b")(x)
        x = layers.BatchNormalization(momentum=float(bn_momentum), name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
        x = layers.AveragePooling3D(pool_size, name=f"block{block}_pool")(x)
    return layers.Flatten(name="flatten")(x)


def age_head(features, mean: float, sd: float):
    """The regression head on ``features``: standardised age, then years by a fixed affine.

    ``age_standardised`` is trained; ``age`` is a non-trainable Dense(1) holding ``sd`` and
    ``mean`` (saved with the model, so a reloaded model predicts years). A Dense layer rather than
    a custom one: every relevance method already propagates through it, and DTD's conservation
    (relevance sums to the output) then holds in years.

    Raises
    ------
    ModelError
        When ``sd`` is not positive or either value is not finite.
    """
    import math

    mean, sd = float(mean), float(sd)
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
        raise ModelError(f"age standardisation needs a finite mean and a positive SD, got "
                         f"mean={mean}, sd={sd} (are all training ages equal?)")
    layers = keras.layers
    z = layers.Dense(1, name="age_standardised", dtype="float32")(features)
    years = layers.Dense(1, name="age", dtype="float32", trainable=False,
                         kernel_initializer=keras.initializers.Constant(sd),
                         bias_initializer=keras.initializers.Constant(mean))
    return years(z)


def build_resnet3d(input_shape: Sequence[int] = SEED_INPUT_SHAPE,
                   widths: Sequence[int] = (8, 16, 32, 64), kernel_size: int = 3,
                   dense_units: int = 32, n_classes: int = 3, pool_size: int = 2,
                   name: str = "resnet3d", bn_momentum: float = 0.99) -> keras.Model:
    """Build a small residual 3D CNN (issue #14) with stable layer names.

    ``stem_conv`` (Conv3D(widths[0], k, relu, valid)); per block ``b`` with ``k`` filters::

        block{b}_conv_a    Conv3D(k, kernel_size, relu, same)
        block{b}_conv_b    Conv3D(k, kernel_size, same)     linear: BatchNorm follows
        block{b}_bn        BatchNormalization
        block{b}_shortcut  Conv3D(k, 1)                     only where the width changes
        block{b}_add       Add (the residual connection)
        block{b}_relu      ReLU
        block{b}_pool      AveragePooling3D(pool_size)      every block but the last

    then ``global_pool`` (GlobalAveragePooling3D) -> ``dense1`` (Dense, relu) -> ``logits``.
    Parameters, return value and errors as :func:`build_model`; the input must keep at least one
    voxel per axis after the stem and the poolings.
    """
    input_shape = _checked_input_shape(input_shape)
    widths = tuple(int(w) for w in widths)
    _check_sizes(widths, kernel_size, dense_units, n_classes, pool_size, bn_momentum)
    smallest = (kernel_size - 1) + int(pool_size) ** (len(widths) - 1)
    if min(input_shape[:3]) < smallest:
        raise ModelError(f"input {input_shape[:3]} is too small for resnet3d with {len(widths)} "
                         f"blocks: every axis needs at least {smallest} voxels")
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Conv3D(widths[0], kernel_size, activation="relu", name="stem_conv")(inputs)
    for block, width in enumerate(widths, start=1):
        y = layers.Conv3D(width, kernel_size, padding="same", activation="relu",
                          name=f"block{block}_conv_a")(x)
        y = layers.Conv3D(width, kernel_size, padding="same", name=f"block{block}_conv_b")(y)
        y = layers.BatchNormalization(momentum=float(bn_momentum), name=f"block{block}_bn")(y)
        if x.shape[-1] != width:
            x = layers.Conv3D(width, 1, name=f"block{block}_shortcut")(x)
        x = layers.ReLU(name=f"block{block}_relu")(layers.Add(name=f"block{block}_add")([x, y]))
        if block < len(widths):
            x = layers.AveragePooling3D(pool_size, name=f"block{block}_pool")(x)
    x = layers.GlobalAveragePooling3D(name="global_pool")(x)
    x = layers.Dense(int(dense_units), activation="relu", name="dense1")(x)
    outputs = layers.Dense(int(n_classes), name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


# The ``model.architecture`` names and their builders.
ARCHITECTURES = {"taylor2019": build_model, "resnet3d": build_resnet3d}


def _checked_input_shape(input_shape: Sequence[int]) -> tuple:
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) == 3:
        input_shape = input_shape + (1,)
    if len(input_shape) != 4:
        raise ModelError(f"input_shape must be (X, Y, Z) or (X, Y, Z, C), got {input_shape}")
    return input_shape


def _check_sizes(widths: tuple, kernel_size, dense_units, n_classes, pool_size,
                 bn_momentum) -> None:
    if not widths:
        raise ModelError("widths must name at least one block")
    if not 0.0 <= float(bn_momentum) < 1.0:
        raise ModelError(f"bn_momentum must be in [0, 1), got {bn_momentum}")
    for label, value in [("widths", min(widths)), ("kernel_size", kernel_size),
                         ("dense_units", dense_units), ("n_classes", n_classes),
                         ("pool_size", pool_size)]:
        if int(value) < 1:
            raise ModelError(f"{label} must be positive, got {value}")


@dataclass(frozen=True)
class ModelSettings:
    """The ``model`` config group (``configs/model/taylor2019.yaml`` or ``resnet3d.yaml``), read
    once. ``architecture`` picks the builder (:data:`ARCHITECTURES`).

    ``n_classes`` None means one output per age bin of the data. ``task`` is ``classification``
    (age bins) or ``regression`` (age in years, trained with ``regression_loss``).
    """

    name: str
    architecture: str
    widths: tuple
    kernel_size: int
    dense_units: int
    n_classes: int | None
    pool_size: int
    bn_momentum: float
    task: str
    regression_loss: str

    @classmethod
    def from_cfg(cls, model_cfg) -> "ModelSettings":
        """Read the config group; every key comes from the YAML (no defaults here but for keys
        old runs lack).

        Raises
        ------
        ModelError
            An unknown ``architecture``, ``task`` or ``regression_loss``.
        """
        # .get: configs saved by runs made before resnet3d and regression existed lack the keys.
        architecture = str(model_cfg.get("architecture", "taylor2019"))
        task = str(model_cfg.get("task") or "classification")
        loss = str(model_cfg.get("regression_loss") or "mae")
        for key, value, allowed in (("architecture", architecture, tuple(ARCHITECTURES)),
                                    ("task", task, TASKS),
                                    ("regression_loss", loss, REGRESSION_LOSSES)):
            if value not in allowed:
                raise ModelError(f"model.{key}={value!r}; expected one of {', '.join(allowed)}")
        if task == "regression" and architecture != "taylor2019":
            raise ModelError(f"model.task=regression is built on the taylor2019 network, not "
                             f"model.architecture={architecture}")
        return cls(
            name=str(model_cfg.name),
            architecture=architecture,
            widths=tuple(int(w) for w in model_cfg.widths),
            kernel_size=int(model_cfg.kernel_size),
            dense_units=int(model_cfg.dense_units),
            n_classes=None if model_cfg.n_classes is None else int(model_cfg.n_classes),
            pool_size=int(model_cfg.pool_size),
            bn_momentum=float(model_cfg.bn_momentum),
            task=task,
            regression_loss=loss,
        )

    @property
    def is_regression(self) -> bool:
        return self.task == "regression"

    def build(self, input_shape: Sequence[int], n_classes: int | None = None,
              age_scale: tuple | None = None) -> keras.Model:
        """The network for volumes of ``input_shape``; ``n_classes`` is the data's bin count,
        ``age_scale`` the training ages' ``(mean, sd)`` (required for regression).

        Raises
        ------
        ModelError
            The configured ``n_classes`` disagrees with the data, neither is given, or a size
            does not fit (see :func:`build_model`).
        """
        if self.is_regression:
            if age_scale is None:
                raise ModelError("model.task=regression needs the training ages' mean and SD")
            return build_model(input_shape=input_shape, widths=self.widths,
                               kernel_size=self.kernel_size, dense_units=self.dense_units,
                               pool_size=self.pool_size, name=self.name,
                               bn_momentum=self.bn_momentum, age_scale=age_scale)
        configured = self.n_classes
        if configured is not None and n_classes is not None and configured != int(n_classes):
            raise ModelError(
                f"model.n_classes={configured} but the data has {n_classes} age bins "
                f"(data.bin_edges); set model.n_classes=null to follow the data"
            )
        n_out = configured if configured is not None else n_classes
        if n_out is None:
            raise ModelError("model.n_classes is null and no class count was given")
        return ARCHITECTURES[self.architecture](input_shape=input_shape, widths=self.widths,
                           kernel_size=self.kernel_size, dense_units=self.dense_units,
                           n_classes=int(n_out), pool_size=self.pool_size, name=self.name,
                           bn_momentum=self.bn_momentum)


def model_from_config(model_cfg, input_shape: Sequence[int],
                      n_classes: int | None = None) -> keras.Model:
    """Build the network described by the ``model`` config group for volumes of ``input_shape``.

    ``n_classes`` (one per age bin of the data) is used when the config leaves ``n_classes`` null;
    when both are given they must agree.
    """
    return ModelSettings.from_cfg(model_cfg).build(input_shape, n_classes)

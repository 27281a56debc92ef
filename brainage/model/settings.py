"""The ``model`` config group read once (:class:`ModelSettings`) and the builders it picks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras

from brainage.config_values import ConfigReader, at_least, one_of, real, sequence, text
from brainage.errors import ModelError
from brainage.model.resnet3d import build_resnet3d
from brainage.model.sfcn import build_sfcn
from brainage.model.taylor2019 import build_model

TASKS = ("classification", "regression")
REGRESSION_LOSSES = ("mae", "mse")

# The ``model.architecture`` names and their builders.
ARCHITECTURES = {"taylor2019": build_model, "resnet3d": build_resnet3d, "sfcn": build_sfcn}
# The optional keys each builder takes (the others must be null for it).
_OPTIONS = {"taylor2019": ("dense_units",), "resnet3d": ("dense_units",), "sfcn": ("dropout",)}
_OPTION_KEYS = ("dense_units", "dropout")


@dataclass(frozen=True)
class ModelSettings:
    """The ``model`` config group (``configs/model/taylor2019.yaml``, ``resnet3d.yaml`` or
    ``sfcn.yaml``), read once. ``architecture`` picks the builder (:data:`ARCHITECTURES`).

    ``n_classes`` None means one output per age bin of the data. ``task`` is ``classification``
    (age bins) or ``regression`` (age in years, trained with ``regression_loss``), for every
    architecture. ``dense_units`` is None for sfcn (no hidden dense layer); ``dropout`` is sfcn's
    only (None for the others).
    """

    name: str
    architecture: str
    widths: tuple
    kernel_size: int
    dense_units: int | None
    n_classes: int | None
    pool_size: int
    bn_momentum: float
    task: str
    regression_loss: str
    dropout: float | None = None

    @classmethod
    def from_cfg(cls, model_cfg) -> "ModelSettings":
        """Read the config group; every key comes from the YAML (no defaults here but for keys
        old runs lack).

        Raises
        ------
        ModelError
            A key missing or of the wrong kind, an unknown ``architecture``, ``task`` or
            ``regression_loss``; the message names the key (``model.widths``) and what was expected.
        """
        model = ConfigReader(model_cfg, "model", ModelError)
        # Configs saved by runs made before resnet3d, regression and sfcn existed lack the keys.
        architecture = _since(model, "architecture", "taylor2019", one_of(*ARCHITECTURES),
                              _one_of(ARCHITECTURES))
        options = {"dense_units": model.value("dense_units", at_least(1),
                                              "a number of units >= 1 or null", optional=True),
                   # only sfcn.yaml has the key
                   "dropout": _since(model, "dropout", None, real, "a fraction or null",
                                     optional=True)}
        _check_options(architecture, options)
        return cls(
            name=model.value("name", text, "a name"),
            architecture=architecture,
            widths=model.value("widths", _widths, "filters per block, e.g. [8, 16, 32, 64]"),
            kernel_size=model.value("kernel_size", at_least(1), "a size in voxels >= 1"),
            n_classes=model.value("n_classes", at_least(1),
                                  "a number of classes or null (one per age bin)", optional=True),
            pool_size=model.value("pool_size", at_least(1), "a size in voxels >= 1"),
            bn_momentum=model.value("bn_momentum", _momentum, "a number in [0, 1]"),
            task=_since(model, "task", "classification", one_of(*TASKS), _one_of(TASKS),
                        optional=True),
            regression_loss=_since(model, "regression_loss", "mae", one_of(*REGRESSION_LOSSES),
                                   _one_of(REGRESSION_LOSSES), optional=True),
            **options,
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
        if self.is_regression and age_scale is None:
            raise ModelError("model.task=regression needs the training ages' mean and SD")
        n_out = 1 if self.is_regression else self._n_outputs(n_classes)
        options = {key: value for key, value in (("dense_units", self.dense_units),
                                                  ("dropout", self.dropout)) if value is not None}
        return ARCHITECTURES[self.architecture](
            input_shape=input_shape, widths=self.widths, kernel_size=self.kernel_size,
            n_classes=n_out, pool_size=self.pool_size, name=self.name,
            bn_momentum=self.bn_momentum, age_scale=age_scale if self.is_regression else None,
            **options)

    def _n_outputs(self, n_classes: int | None) -> int:
        configured = self.n_classes
        if configured is not None and n_classes is not None and configured != int(n_classes):
            raise ModelError(
                f"model.n_classes={configured} but the data has {n_classes} age bins "
                f"(data.bin_edges); set model.n_classes=null to follow the data"
            )
        n_out = configured if configured is not None else n_classes
        if n_out is None:
            raise ModelError("model.n_classes is null and no class count was given")
        return int(n_out)


def _since(model: ConfigReader, key: str, before, convert, expected: str, optional: bool = False):
    """``model.<key>``; ``before`` (what the code did then) in a config saved by a run made before
    the key existed, and, when ``optional``, for null."""
    if not model.has(key):
        return before
    value = model.value(key, convert, expected, optional=optional)
    return before if value is None else value


def _one_of(allowed) -> str:
    return f"one of {', '.join(allowed)}"


def _widths(value) -> tuple:
    """One filter count (>= 1) per block, at least one block."""
    widths = sequence(at_least(1))(value)
    if not widths:
        raise ValueError(value)
    return widths


def _momentum(value) -> float:
    momentum = real(value)
    if not 0 <= momentum <= 1:
        raise ValueError(value)
    return momentum


def _check_options(architecture: str, options: dict) -> None:
    """Each architecture's optional keys set, the others null (sfcn has no ``dense1``...)."""
    for key in _OPTION_KEYS:
        takes = key in _OPTIONS[architecture]
        if takes and options[key] is None:
            raise ModelError(f"model.{key} is null, but model.architecture={architecture} needs it")
        if not takes and options[key] is not None:
            raise ModelError(f"model.{key}={options[key]}: model.architecture={architecture} does not "
                             "take it; set it to null")


def model_from_config(model_cfg, input_shape: Sequence[int],
                      n_classes: int | None = None) -> keras.Model:
    """Build the network described by the ``model`` config group for volumes of ``input_shape``.

    ``n_classes`` (one per age bin of the data) is used when the config leaves ``n_classes`` null;
    when both are given they must agree.
    """
    return ModelSettings.from_cfg(model_cfg).build(input_shape, n_classes)

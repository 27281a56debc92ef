"""The ``model`` config group read once (:class:`ModelSettings`) and the builders it picks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras

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
        options = {"dense_units": model_cfg.dense_units,
                   # .get: only sfcn.yaml has the key (and runs made before sfcn existed lack it).
                   "dropout": model_cfg.get("dropout")}
        _check_options(architecture, options)
        return cls(
            name=str(model_cfg.name),
            architecture=architecture,
            widths=tuple(int(w) for w in model_cfg.widths),
            kernel_size=int(model_cfg.kernel_size),
            dense_units=None if options["dense_units"] is None else int(options["dense_units"]),
            n_classes=None if model_cfg.n_classes is None else int(model_cfg.n_classes),
            pool_size=int(model_cfg.pool_size),
            bn_momentum=float(model_cfg.bn_momentum),
            task=task,
            regression_loss=loss,
            dropout=None if options["dropout"] is None else float(options["dropout"]),
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

"""Access to a finished training run: find it, rebuild its cohort, load its model, pick subjects.

Every stage that works on a trained model (explain, evaluate, and later infer) starts here::

    request = TrainRunRequest.from_cfg(cfg)        # train_dir / model_path / newest; data; subjects
    opened = open_train_run(request, progress)      # run, cohort rebuilt (split checked), rows
    model = load_model(opened.train, opened.prep.input_shape)
    analyzers = load_analyzers(model, method_configs(cfg.explainer))

Problems a user can fix raise :class:`~brainage.errors.ExplainError` naming the run, file or
subject at fault.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.config_values import given_overrides
from brainage.data.prepared import PreparedData
from brainage.errors import ExplainError
from brainage.runs import latest_run, unfinished_reason
from brainage.runs.scorecards import faithfulness_status

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

    def data_config(self, overrides: dict):
        """The run's data config with ``overrides`` merged in; a key the run's data config does
        not have is an error (a typo would otherwise be ignored)."""
        from omegaconf import OmegaConf

        unknown = _unknown_keys(self.cfg.data, overrides or {}, "data")
        if unknown:
            raise ExplainError(f"{unknown[0]}: not a key of the training run's data config "
                               f"({self.dir}/.hydra/config.yaml); check the spelling")
        return OmegaConf.merge(self.cfg.data, overrides or {})


@dataclass(frozen=True)
class OpenedRun:
    """A training run with its cohort rebuilt by the data stage and the selected rows, in order."""

    train: TrainRun
    prep: PreparedData
    rows: np.ndarray

    def subject_ids(self, rows=None) -> list[str]:
        """Subject ids of ``rows`` (default: the selected rows)."""
        rows = self.rows if rows is None else rows
        return [str(s) for s in self.prep.table["subject_id"].to_numpy()[rows]]

    def image_path(self, row: int) -> str | None:
        """The subject's source image (None for a stacked-array cohort)."""
        path = self.prep.table["path"][row] if "path" in self.prep.table else None
        return str(path) if path is not None and pd.notna(path) and str(path) else None


def resolve_train_run(request: TrainRunRequest) -> TrainRun:
    """The requested training run, checked to hold what using it needs."""
    from omegaconf import OmegaConf

    train_dir, model_path = _locate(request)
    config_path = train_dir / ".hydra" / "config.yaml"
    if not config_path.is_file():
        raise ExplainError(f"{train_dir} has no .hydra/config.yaml: cannot tell which data the "
                           "model was trained on")
    split_path = train_dir / "split.csv"
    if not split_path.is_file():
        raise ExplainError(f"{train_dir} has no split.csv")
    split = pd.read_csv(split_path, dtype={"subject_id": str})
    return TrainRun(train_dir, model_path, OmegaConf.load(config_path), split)


def _locate(request: TrainRunRequest) -> tuple[Path, Path]:
    """``(train_dir, model_path)``: from ``model_path``, from ``train_dir``, or the newest run.

    A run whose ``run.json`` says it did not finish (running, failed, interrupted, killed) is
    refused; the newest run is the newest *finished* one, and the log says which it is.
    """
    if request.model_path:
        if not request.model_path.is_file():
            raise ExplainError(f"model_path={request.model_path} does not exist")
        train_dir = Path(request.train_dir or request.model_path.parent)
        _check_finished(train_dir, f"model_path={request.model_path}")
        return train_dir, request.model_path
    if request.train_dir:
        train_dir = request.train_dir
        if not train_dir.is_dir():
            raise ExplainError(f"train_dir={train_dir} does not exist; pass a training run "
                               "directory such as outputs/train/<date>_<time>")
        if not (train_dir / "model.keras").is_file():
            raise ExplainError(f"train_dir={train_dir} holds no model.keras (unfinished or not a "
                               "training run); pass a finished run or model_path=…")
        _check_finished(train_dir, f"train_dir={train_dir}")
        return train_dir, train_dir / "model.keras"
    try:
        train_dir = latest_run("train", request.outputs_dir)
    except FileNotFoundError as exc:
        raise ExplainError(str(exc)) from exc
    log.info("training run %s: the newest finished one under %s (train_dir=… picks another)",
             train_dir, Path(request.outputs_dir) / "train")
    return train_dir, train_dir / "model.keras"


def _check_finished(train_dir: Path, given: str) -> None:
    reason = unfinished_reason(train_dir)
    if reason is not None:
        raise ExplainError(f"{given}: the training run {train_dir} did not finish, its run.json "
                           f"says {reason}; pass a finished run")


def training_data(train: TrainRun, overrides: dict, progress: bool) -> PreparedData:
    """The run's cohort rebuilt by the data stage (from its cache), split unchanged.

    A cohort that no longer reproduces the run's ``split.csv`` is refused.
    """
    # deferred: the data stage loads nibabel and scipy, which evaluate's command line need not
    from brainage.data.cohort import prepare_data

    prep = prepare_data(train.data_config(overrides), seed=int(train.cfg.seed), run_dir=None,
                        progress=progress)
    if list(prep.table["subject_id"]) != list(train.split["subject_id"]) or \
            list(prep.table["split"]) != list(train.split["split"]):
        raise ExplainError(f"the data stage no longer reproduces {train.dir}/split.csv (the "
                           "cohort or its files changed since training); use the original data")
    return prep


def select_subjects(table: pd.DataFrame, subjects: str | tuple) -> np.ndarray:
    """Rows of ``table`` to use: a split name, ``all`` or subject ids (in the order given)."""
    if isinstance(subjects, str):
        if subjects == "all":
            rows = np.arange(len(table))
        else:
            rows = np.flatnonzero(table["split"].to_numpy() == subjects)
    else:
        subjects = [str(s) for s in subjects]
        known = set(table["subject_id"])
        unknown = [s for s in subjects if s not in known]
        if unknown:
            raise ExplainError(f"subjects not in the training run's cohort: {', '.join(unknown[:5])}")
        position = {sid: i for i, sid in enumerate(table["subject_id"])}
        rows = np.array([position[s] for s in subjects], dtype=np.int64)
    if len(rows) == 0:
        raise ExplainError(f"subjects={subjects!r} selects no subject; use test, val, train, all "
                           "or a list of subject ids")
    return rows


def open_train_run(request: TrainRunRequest, progress: bool) -> OpenedRun:
    """Resolve the run, rebuild its cohort and select the requested subjects."""
    train = resolve_train_run(request)
    prep = training_data(train, request.data, progress)
    return OpenedRun(train, prep, select_subjects(prep.table, request.subjects))


def method_configs(explainer) -> dict:
    """``{name: params}`` of the methods to run (``explainer=dtd`` or ``explainer=[dtd,gradcam]``)."""
    from omegaconf import OmegaConf

    methods = OmegaConf.to_container(explainer, resolve=True) if explainer else {}
    if not methods:
        raise ExplainError("no explanation method selected; use explainer=dtd or "
                           "explainer=[dtd,gradcam]")
    return methods


def load_model(train: TrainRun, input_shape: tuple):
    """The trained Keras model, checked against the data's input shape (a regressor saved with
    its head unfolded is folded: :func:`brainage.model.fold_age_head`)."""
    import keras

    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.model import fold_age_head

    model = fold_age_head(keras.saving.load_model(train.model_path, compile=False))
    expected = tuple(model.input_shape[1:])
    if expected != tuple(input_shape):
        raise ExplainError(f"model {train.model_path} expects inputs {expected} but the data are "
                           f"{tuple(input_shape)}; use the data the model was trained on")
    return model


def load_analyzers(model, methods: dict) -> dict:
    """One analyzer per method, ``{name: analyzer}``, from the methods' parameters."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import analyzer_from_config

    analyzers = {}
    for name, params in methods.items():
        try:
            analyzers[name] = analyzer_from_config(model, params)
        except (ValueError, KeyError, TypeError) as exc:
            raise ExplainError(f"explainer {name}: {exc}") from exc
    return analyzers


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


def method_checks(settings, opened: OpenedRun) -> dict:
    """``{method: checks}`` for each map's ``descrip`` and the report: the verdict of the newest
    finished evaluate run of this training run under ``outputs_dir`` ("pass", "fails: …"), or
    "not scored" without one (:func:`brainage.runs.scorecards.faithfulness_status`)."""
    status, _ = faithfulness_status(opened.train.dir, settings.run.outputs_dir,
                                    list(settings.methods))
    return status

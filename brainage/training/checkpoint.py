"""A training run's directory: opened fresh or resumed, with the state a resumed run continues.

``checkpoint/`` in the run directory holds ``config.yaml`` (the composed config the run started
with, written first, which ``trainer.resume`` uses), ``state.json`` (:class:`RunState`), the last
epoch's full model (``epochNNNN.keras``: weights, optimizer state, compiled loss) and the best
epoch's weights (``best_epochNNNN.weights.h5``). The epoch callbacks
(:mod:`brainage.training.callbacks`) write all but the config after every epoch.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from brainage.errors import RunDirError, TrainError
from brainage.runs import check_fresh_run_dir, is_finished
from brainage.trained.grid import write_trained_grid
from brainage.training.settings import TrainSettings

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
CONFIG_FILE = "config.yaml"
# A run directory holding one of these is finished: never written again.
FINISHED_MARKERS = ("model.keras", "metrics.json")


@dataclass
class RunState:
    """Everything besides the model and optimizer that a resumed run needs to continue exactly.

    Saved as ``checkpoint/state.json`` after every epoch, next to ``checkpoint/<last_model>``.
    Each epoch callback keeps its part here: the checkpoint the history, timings and file names,
    the best-epoch tracker ``best_*``, ``wait`` and ``stopped_early``, the plateau schedule
    ``plateau``; ``init_from`` is what the fresh model took from ``trainer.init_from``
    (:func:`brainage.training.warm_start.warm_start`), kept for the resumed run's metrics.
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
    init_from: dict | None = None

    def save(self, checkpoint_dir: Path) -> None:
        """Replace ``state.json`` atomically (a crash leaves the old or the new one, whole)."""
        tmp = checkpoint_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, allow_nan=True))
        os.replace(tmp, checkpoint_dir / STATE_FILE)

    @classmethod
    def load(cls, checkpoint_dir: Path) -> "RunState":
        return cls(**json.loads((checkpoint_dir / STATE_FILE).read_text()))


def open_run(settings: TrainSettings, run_dir=None) -> tuple[Path, TrainSettings]:
    """The run directory to write and the settings to run with.

    A fresh run gets ``run_dir`` (default: Hydra's output directory), refused when it holds a
    finished or interrupted run; its composed config is saved at once as
    ``checkpoint/config.yaml``, so that a run stopped at any point can be continued. With
    ``trainer.resume`` the interrupted run is reopened with the settings it started with.

    Raises
    ------
    TrainError
        A used run directory, or nothing (or a finished run) to resume.
    """
    if settings.resume:
        return _resumed_run(settings)
    run_dir = _fresh_run_dir(run_dir)
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    try:
        text = OmegaConf.to_yaml(settings.config, resolve=True)
    except Exception:  # an interpolation only Hydra can resolve: keep it as written
        text = OmegaConf.to_yaml(settings.config)
    (checkpoint_dir / CONFIG_FILE).write_text(text)
    return run_dir, settings


def _fresh_run_dir(run_dir) -> Path:
    if run_dir is None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            raise TrainError("train(cfg) outside a Hydra run needs an explicit run_dir")
        run_dir = HydraConfig.get().runtime.output_dir
    run_dir = Path(run_dir)
    try:
        check_fresh_run_dir(run_dir, markers=FINISHED_MARKERS)
    except RunDirError as err:
        raise TrainError(str(err)) from err
    if (run_dir / CHECKPOINT_DIR / CONFIG_FILE).exists():
        raise TrainError(f"{run_dir} holds an interrupted run; continue it with "
                         f"trainer.resume={run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def check_resumable(resume, run_dir=None) -> None:
    """Check that the run ``resume`` can be continued (in ``run_dir``, if given), writing nothing.

    Raises
    ------
    TrainError
        No run to continue there, a finished run, or another run directory than ``resume``.
    """
    resume = Path(resume)
    if run_dir is not None and Path(run_dir).resolve() != resume.resolve():
        raise TrainError(f"trainer.resume={resume} continues in {resume} itself, not in "
                         f"{run_dir}; resume one run at a time, without -m or hydra.run.dir")
    config = started_config(resume)
    if config is None:
        raise TrainError(f"trainer.resume={resume}: no checkpoint to resume (expected "
                         f"{resume / CHECKPOINT_DIR / CONFIG_FILE}); start a fresh run instead")
    saved = OmegaConf.load(config)
    if "trainer" not in saved:
        raise TrainError(f"trainer.resume={resume}: not a training run ({config} has no "
                         "trainer settings)")
    members = OmegaConf.select(saved, "trainer.ensemble")
    if isinstance(members, int) and members >= 2:
        raise TrainError(f"trainer.resume={resume}: an ensemble run of {members} members is "
                         f"resumed member by member, trainer.resume={resume}/members/<k>_seed<s>; "
                         f"its finished members form an ensemble as train_dirs=[{resume}/members]")
    if is_finished(resume, "metrics.json"):
        raise TrainError(f"trainer.resume={resume}: that run already finished (metrics.json)")


def started_config(run_dir) -> Path | None:
    """The config the run in ``run_dir`` started with: ``checkpoint/config.yaml``, or for a run
    stopped before the training stage wrote it, the command line's ``.hydra/config.yaml``."""
    for path in (run_dir / CHECKPOINT_DIR / CONFIG_FILE, run_dir / ".hydra" / "config.yaml"):
        if path.is_file():
            return path
    return None


def resume_command(run_dir) -> str:
    """The command that continues the training run in ``run_dir``."""
    return f"python -m brainage.train trainer.resume={run_dir}"


def _resumed_run(settings: TrainSettings) -> tuple[Path, TrainSettings]:
    """The run to continue and the config it started with (other command-line settings ignored,
    except ``trainer.verbose``)."""
    run_dir = settings.resume
    check_resumable(run_dir)
    config = started_config(run_dir)
    saved = OmegaConf.load(config)
    saved.trainer.resume = str(run_dir)
    saved.trainer.verbose = settings.verbose
    log.info("resuming %s with the configuration it started with (%s); other command-line "
             "settings are ignored", run_dir, config)
    return run_dir, TrainSettings.from_cfg(saved)


def start_run_files(run_dir: Path, settings: TrainSettings, data) -> RunState:
    """Write ``split.csv`` (a resumed run that has one: check it) and ``grid.json``
    (:mod:`brainage.trained.grid`), and return the run state to continue from (empty for a fresh
    run, or a run stopped before its first epoch ended).

    Raises
    ------
    TrainError
        A resumed run whose data stage now gives another split.
    """
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    split = data.split_table()
    if settings.resume and (run_dir / "split.csv").is_file():
        _check_same_split(run_dir, split)
    else:
        split.to_csv(run_dir / "split.csv", index=False)
    write_trained_grid(run_dir, settings.data, data.grid)  # what make predict checks a cohort against
    if settings.resume and (checkpoint_dir / STATE_FILE).is_file():
        return RunState.load(checkpoint_dir)
    return RunState()


def _check_same_split(run_dir: Path, split) -> None:
    import pandas as pd

    before = pd.read_csv(run_dir / "split.csv", dtype={"subject_id": str})
    now = split.reset_index(drop=True)
    same = len(before) == len(now) and all(
        (before[c].astype(str).to_numpy() == now[c].astype(str).to_numpy()).all()
        for c in ("subject_id", "split"))
    if not same:
        raise TrainError(f"trainer.resume={run_dir}: the data stage now gives a different "
                         f"split than {run_dir / 'split.csv'}; the run cannot be continued")

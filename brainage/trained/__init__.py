"""A finished training run and everything a stage needs from it (explain, evaluate, infer, predict).

Modules, bottom up:

* :mod:`~brainage.trained.run` — which run (``train_dir``, ``model_path`` or the newest finished
  one), its ``run.json``, resolved config, ``split.csv`` and ``metrics.json``, and its data config
  with the user's overrides;
* :mod:`~brainage.trained.cohort` — the run's cohort rebuilt by the data stage (split checked) and
  the selected subjects; an ensemble's members' cohorts, rebuilt only where needed;
* :mod:`~brainage.trained.model` — its model (checked against the data) and the analyzers of the
  selected explanation methods;
* :mod:`~brainage.trained.grid` — ``grid.json``: the grid and data format the model was trained
  on (written by training, checked by predict).

Every problem a user can fix raises :class:`~brainage.errors.TrainedRunError`, which every stage
prints the same way (``error: <message>``, exit status 2). A typical use::

    request = TrainRunRequest.from_cfg(cfg)        # train_dir / model_path / newest; data; subjects
    opened = open_train_run(request, progress)      # run, cohort rebuilt (split checked), rows
    model = load_model(opened.train, opened.prep.input_shape)
    analyzers = load_analyzers(model, method_configs(cfg.explainer))
"""
from brainage.trained.cohort import (
    OpenedRun,
    TrainingCohorts,
    open_train_run,
    select_subjects,
    training_data,
)
from brainage.trained.grid import TrainedGrid, read_trained_grid, write_trained_grid
from brainage.trained.model import load_analyzers, load_model, method_configs
from brainage.trained.run import (
    SPLITS,
    TrainRun,
    TrainRunRequest,
    read_run_config,
    resolve_train_run,
    run_config,
)

__all__ = ["SPLITS", "OpenedRun", "TrainRun", "TrainRunRequest", "TrainedGrid", "TrainingCohorts",
           "load_analyzers",
           "load_model", "method_configs", "open_train_run", "read_run_config",
           "read_trained_grid", "resolve_train_run", "run_config", "select_subjects",
           "training_data", "write_trained_grid"]

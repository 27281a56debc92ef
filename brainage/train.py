"""Training stage: the Taylor 2019 CNN on the prepared cohort, evaluated on the held-out test split.

    python -m brainage.train                                  # quick experiment (default)
    python -m brainage.train experiment=seed_taylor2019       # the seed's set-up
    python -m brainage.train trainer.resume=outputs/train/<run>   # continue an interrupted run
    python -m brainage.train trainer.cv_folds=5               # stratified 5-fold cross-validation
    python -m brainage.train trainer.ensemble=5               # five seeds, one ensemble run
    python -m brainage.train experiment=brainage_regression   # brain age in years (model.task=regression)
    python -m brainage.train trainer.init_from=outputs/train/<run>   # start from another run's weights

Writes into the Hydra run directory: ``model.keras`` (best validation epoch), ``metrics.json``,
``history.csv``, ``split.csv``, ``test_predictions.csv`` (per test subject: true and predicted bin,
logits), ``training_curves.png``, ``confusion_matrix.png`` and ``checkpoint/`` (the last epoch's
full state, which ``trainer.resume`` continues from). ``metrics.json`` also holds the scikit-learn
baselines fitted on the same split and 95 % Wilson intervals. With ``trainer.cv_folds=k`` each fold
is such a run in ``fold<i>/`` and the run directory gets the fold table (``sweep.md``, mean and SD
over folds). With ``trainer.ensemble=N`` (N >= 2) N members seeded ``seed`` … ``seed + N - 1``
are such runs in ``members/<k>_seed<s>/`` and the run directory gets ``ensemble.json`` and the
ensemble's ``metrics.json`` (:mod:`brainage.training.ensemble_run`). A run directory is never
overwritten. With ``model.task=regression`` the network
predicts age in years: ``metrics.json`` holds MAE, RMSE, Pearson r and R² with bootstrap
intervals and the brain-age gap corrected on the validation split, ``test_predictions.csv`` the
gap per test subject, and the figures are ``predicted_age.png`` and ``age_gap.png``.
The work is done by :mod:`brainage.training`.
"""
from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

from omegaconf import DictConfig

from brainage.errors import TrainError
from brainage.runs import hydra_entry, run_stage
from brainage.training.baseline_verdict import baseline_verdict
from brainage.training.outputs import write_regression_outputs, write_run_outputs
from brainage.training.reproducibility import request_determinism, seed_everything

log = logging.getLogger(__name__)


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
        The contents of ``metrics.json``; with ``trainer.cv_folds`` (all folds), the mean and SD
        over folds (:func:`brainage.training.cross_validation.summarise_folds`).

    Raises
    ------
    DataError
        From the data stage: bad participants table, images, bins or split.
    TrainError
        A bad setting, the run directory is already used, there is nothing to resume, the model
        does not fit the data, or ``trainer.init_from`` names nothing to start from.
    """
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.training.settings import TrainSettings
    from brainage.training.warm_start import source_model_path

    settings = TrainSettings.from_cfg(cfg)
    if settings.init_from and not settings.resume:  # refused before a resumable checkpoint exists
        source_model_path(settings.init_from)
    if settings.runs_every_fold:
        return _cross_validate(settings, run_dir, data, callbacks)
    if settings.runs_ensemble:
        return _train_ensemble(settings, run_dir, data, callbacks)
    return _train_run(settings, run_dir, data, callbacks)


def _cross_validate(settings, run_dir, data, callbacks) -> dict:
    """Every fold in its own sub-run ``fold<i>/`` of the run directory, then the fold table."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.training.checkpoint import open_run
    from brainage.training.cross_validation import fold_dir, summarise_folds

    if settings.resume:
        raise TrainError(f"trainer.resume={settings.resume}: a cross-validation run is resumed "
                         "fold by fold: trainer.resume=<run>/fold<i>")
    run_dir, settings = open_run(settings, run_dir)
    if data is None:
        # deferred: imports nibabel, pandas and scipy, not needed for --help
        from brainage.data.cohort import prepare_data

        data = prepare_data(settings.data, seed=settings.seed, run_dir=run_dir)
    results = [_train_sub_run(settings.for_fold(fold), fold_dir(run_dir, fold), data, callbacks)
               for fold in range(settings.cv_folds)]
    return summarise_folds(run_dir, results)


def _train_ensemble(settings, run_dir, data, callbacks) -> dict:
    """Every member a complete training run of its own seed in ``members/<k>_seed<s>/``, then
    ``ensemble.json`` and the ensemble's ``metrics.json``. A cohort handed in (``data``) is
    shared; otherwise each member runs the data stage with its own seed."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.training.checkpoint import open_run
    from brainage.training.ensemble_run import member_dir, member_line, summarise_ensemble

    run_dir, settings = open_run(settings, run_dir)
    finished = []
    for member in range(settings.ensemble):
        member_settings = settings.for_member(member)
        directory = member_dir(run_dir, member, member_settings.seed)
        log.info("training ensemble member %d/%d (seed %d) in %s", member + 1, settings.ensemble,
                 member_settings.seed, directory)
        metrics = _train_sub_run(member_settings, directory, data, callbacks)
        log.info("%s", member_line(member, settings.ensemble, member_settings.seed, metrics,
                                   directory))
        finished.append((directory, member_settings.seed, metrics))
    return summarise_ensemble(run_dir, finished)


def _train_sub_run(settings, directory, data, callbacks) -> dict:
    """A fold or an ensemble member trained in its own run directory inside the run's: its
    ``.hydra/config.yaml`` and ``run.json`` make it a run the other stages open (``make explain
    train_dir=<run>/fold0``) and resume."""
    from brainage.training.ensemble_run import end_member, start_member

    record = start_member(directory, settings.config)
    try:
        metrics = _train_run(settings, directory, data, callbacks)
    except BaseException as exc:  # recorded in the sub-run's run.json, then passed on
        end_member(directory, record, exc)
        raise
    end_member(directory, record, None)
    return metrics


def _train_run(settings, run_dir, data, callbacks) -> dict:
    """One training run (one fold with ``trainer.cv_fold``), fresh or resumed."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.training.checkpoint import open_run, start_run_files
    from brainage.training.distribution import backend_devices

    run_dir, settings = open_run(settings, run_dir)
    request_determinism(settings.deterministic)
    seed_everything(settings.seed)
    import keras

    backend = keras.backend.backend()
    devices = backend_devices(backend)
    log.info("run directory %s; backend %s on %s", run_dir, backend, ", ".join(devices))
    if data is None:
        # deferred: imports nibabel, pandas and scipy, not needed for --help
        from brainage.data.cohort import prepare_data

        data = prepare_data(settings.data, seed=settings.seed, run_dir=run_dir)
    if settings.cv_folds:
        # deferred: imports pandas, not needed for --help
        from brainage.training.cross_validation import fold_data

        data = fold_data(data, settings)
    state = start_run_files(run_dir, settings, data)
    return _fit_and_evaluate(settings, run_dir, data, state, backend, devices, callbacks)


def _fit_and_evaluate(settings, run_dir: Path, data, state, backend: str, devices: list,
                      callbacks) -> dict:
    """Fit the baselines, then the network on the run's devices; keep the best epoch, evaluate
    it on the test split, write."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.training.baselines.suite import fit_baselines
    from brainage.training.fitting import fit_model, predict_test, training_distribution
    from brainage.training.metrics import format_summary, run_metrics, run_timings

    # Before the network: seconds, and a bad atlas fails before minutes of training.
    baselines = fit_baselines(settings.baselines, data, settings.model.task)
    distribution = training_distribution(settings, backend)
    with distribution.scope():
        model, sequences = fit_model(settings, data, state, run_dir, distribution, devices,
                                     callbacks)
        _saved_model(model).save(run_dir / "model.keras")
        logits, predict_seconds = predict_test(model, sequences, data, distribution)
        if settings.model.is_regression:  # the bias correction is fitted on validation
            val_ages, _ = predict_test(model, sequences, data, distribution, split="val")
    placement = {"backend": backend, "devices": devices, "distribution": distribution.kind,
                 "replicas": distribution.n_replicas, "dtype_policy": model.dtype_policy.name}
    timings = run_timings(placement, state, len(data.indices("train")), len(logits),
                          predict_seconds)
    if settings.model.is_regression:
        return _regression_results(settings, run_dir, data, state, (logits, val_ages), timings,
                                   baselines)
    metrics = _with_verdict(run_metrics(settings, data, state, logits, timings, baselines), settings)
    write_run_outputs(run_dir, state.history, state.best_epoch, data, logits, metrics)
    log.info("test results (%s)\n%s", run_dir, format_summary(metrics))
    _warn_if_beaten(metrics)
    return metrics


def _with_verdict(metrics: dict, settings) -> dict:
    """``metrics`` with ``baseline_verdict``: a plain sentence when a baseline beat the network
    on the same split, else None."""
    verdict = baseline_verdict(metrics, settings.model.is_regression,
                               settings.baselines.better_setting)
    return {**metrics, "baseline_verdict": verdict}


def _warn_if_beaten(metrics: dict) -> None:
    if metrics["baseline_verdict"]:
        log.warning(metrics["baseline_verdict"])


def _saved_model(model):
    """What ``model.keras`` holds: the model, a regressor's head folded into one layer."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.model import fold_age_head

    return fold_age_head(model)


def _regression_results(settings, run_dir: Path, data, state, predicted: tuple, timings: dict,
                        baselines: dict) -> dict:
    """A regression run's metrics and files from its ``(test, val)`` predicted ages."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.training.age_metrics import format_regression_summary, regression_run_metrics

    test_ages, val_ages = (p[:, 0] for p in predicted)
    metrics, table = regression_run_metrics(settings, data, state, test_ages, val_ages, timings,
                                            baselines)
    metrics = _with_verdict(metrics, settings)
    write_regression_outputs(run_dir, state.history, state.best_epoch, table, metrics)
    log.info("test results (%s)\n%s", run_dir, format_regression_summary(metrics))
    _warn_if_beaten(metrics)
    return metrics


def _main(cfg: DictConfig, run_dir=None) -> None:
    """Command line: ``python -m brainage.train key=value ...`` (see ``configs/train.yaml``);
    ``run_dir`` stands in for Hydra's run directory (tests)."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.training.checkpoint import check_resumable, resume_command
    from brainage.training.ensemble_run import is_ensemble_config, resume_members_command

    resume = cfg.trainer.resume  # decides the run directory before the settings are read
    continue_with = resume_members_command if is_ensemble_config(cfg) else resume_command
    run_stage(train, cfg, run_dir=run_dir, continue_with=continue_with,
              reopen=partial(check_resumable, resume) if resume else None)


main = hydra_entry(_main, "train")

if __name__ == "__main__":
    main()

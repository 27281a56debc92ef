"""The predict stage: a finished training run applied to any cohort, with or without ages.

``python -m brainage.predict`` (``make predict``) applies the newest finished training run unless
given ``train_dir=…`` or ``model_path=…`` (or an ensemble of runs as one model,
``train_dirs=[A,B,C]``), to the cohort of its data config or another one of the same kind
(``data.root=DIR``; for preprocessed data the derivative ``make preprocess data.root=DIR``
made). Every subject is predicted, with or without an age, and flagged if it was in the training
run's split. Outputs go to ``outputs/predict/<date>_<time>/``:
``predictions.csv``, ``maps/<subject>_<method>_predicted.nii.gz`` and
``group/<method>_mean.nii.gz`` (unless ``maps=false``), ``figures/``, ``report.html`` and, last,
``predict.json``; a failed or refused run leaves no output. A cohort on another grid, of another
voxel size or preprocessing than the model was trained on is refused with one line. The work is
done by :mod:`brainage.predicting` (an ensemble by :mod:`brainage.predicting.ensemble_run`).
"""
from __future__ import annotations

from pathlib import Path

from brainage.runs import hydra_entry, run_stage, staged_run

MARKER = "predict.json"


def predict(cfg, run_dir) -> dict:
    """Run the predict stage into ``run_dir``; returns the summary written to ``predict.json``."""
    # deferred: imports pandas, nibabel and keras, not needed for --help
    from brainage.predicting.ensemble_run import run_ensemble_prediction
    from brainage.predicting.run import PREDICTIONS, run_prediction
    from brainage.predicting.settings import PredictSettings

    settings = PredictSettings.from_cfg(cfg)
    produce = run_ensemble_prediction if settings.train_dirs else run_prediction
    return staged_run(Path(run_dir), lambda work: produce(settings, work), marker=MARKER,
                      refuse=("report.html", PREDICTIONS))


def _main(cfg, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_dir, summary = run_stage(predict, cfg, run_dir=run_dir)
    scores = summary["accuracy"]["all"]
    if not scores["n"]:
        known = "no subject with a known age"
    elif summary["task"] == "regression":
        known = f"MAE {scores['mae']:.2f} y over the {scores['n']} with an age"
    else:
        known = f"accuracy {100 * scores['accuracy']:.1f} % over the {scores['n']} with an age"
    held_out = summary["accuracy"]["held_out"]
    if held_out["n"] and held_out["n"] < scores["n"]:
        known += (f" ({held_out['n']} held out: MAE {held_out['mae']:.2f} y)"
                  if summary["task"] == "regression" else
                  f" ({held_out['n']} held out: {100 * held_out['accuracy']:.1f} %)")
    by = f" with an ensemble of {summary['n_members']}" if summary.get("n_members") else ""
    print(f"predicted {summary['n_subjects']} subjects{by}, {known}: {run_dir}/predictions.csv")


main = hydra_entry(_main, "predict")

if __name__ == "__main__":
    main()

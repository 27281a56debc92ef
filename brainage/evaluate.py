"""The evaluate stage: are the explanations faithful to the network?

``python -m brainage.evaluate`` (``make evaluate``) scores every selected explanation method in every
target mode (``target=…``, ``pairs=[method:target, …]``), plus a random map as the floor, on a
training run (the newest unless ``train_dir=…`` or ``model_path=…``):

* ``scorecard.csv``: one row per (method, target mode) with every check's number, pass/fail against
  the checks' thresholds (``scorecard:`` in ``configs/evaluate.yaml``) and a verdict; the
  default DTD variant it selects;
* region perturbation (Samek et al. 2017): ``perturbation.csv``, ``aopc.csv`` (ranked),
  ``aopc_subjects.csv``, ``figures/perturbation.png``;
* cascading parameter randomisation (Adebayo et al. 2018): ``randomisation.csv``,
  ``randomisation_subjects.csv``, ``figures/randomisation.png``;
* localisation against the synthetic cohort's ground truth (``<data.root>/ground_truth/``):
  ``localisation.csv``, ``localisation_subjects.csv``, ``figures/localisation.png`` — skipped, with
  a note, for cohorts without a ground truth;
* youngest- vs oldest-class maps: ``class_maps.csv``; conservation: ``conservation.csv``;
* a regression run (``model.task=regression``) is scored on its age output: AOPC in years,
  relevance summing to the predicted age, class maps not applicable (``n/a``), explainers that
  contrast classes skipped with a note (:mod:`brainage.faithfulness.regression`);
* Grad-CAM across layers (seed 002): ``gradcam_layers.csv``, ``figures/methods.png``;
* ``report.html`` (offline), ``verdict.md`` and ``evaluate.json`` (settings, timings).

``train_dirs=[A, B, C]`` evaluates several training runs (e.g. seeds) into ``models/<k>_<run>/`` and
writes ``scorecard_summary.csv`` (mean ± SD over the models per pair), a ``scorecard.csv`` of every
model's rows, and the verdict and report of the summary. Runs that form one ensemble (same task,
grid and age bins) are also scored together as one more model into ``models/ensemble/`` (its maps
the mean of the members' maps of the ensemble's class, AOPC on the members' mean logit or age,
every member randomised in step; Grad-CAM across layers not scored), its rows copied to
``scorecard_ensemble.csv`` and set beside the members' mean in the verdict and report;
``evaluate.json``'s ``ensemble`` says where, with its test skill, or why it was not scored
(``ensemble_scored=false`` skips it).

The work is done by :mod:`brainage.faithfulness` (one run: :mod:`~brainage.faithfulness.evaluation`,
several: :mod:`~brainage.faithfulness.several_runs`, their ensemble:
:mod:`~brainage.faithfulness.ensemble_scoring`), the training run's access by
:mod:`brainage.trained`, figures, verdict and report by :mod:`brainage.reporting`.
Everything is written into a hidden work folder and moved into place at the end, so a failed run
never looks complete.
"""
from __future__ import annotations

from brainage.faithfulness.evaluation import EvaluateSettings, evaluate_run
from brainage.faithfulness.several_runs import evaluate_runs
from brainage.runs import hydra_entry, run_stage, staged_run


def evaluate(cfg, run_dir) -> dict:
    """Run the evaluate stage into ``run_dir``; returns the summary written to ``evaluate.json``."""
    settings = EvaluateSettings.from_cfg(cfg)
    produce = evaluate_run if len(settings.runs) == 1 else evaluate_runs
    return staged_run(run_dir, lambda work: produce(settings, work), marker="evaluate.json",
                      refuse=("verdict.md",))


def _main(cfg, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_dir, summary = run_stage(evaluate, cfg, run_dir=run_dir)
    scope = (f"{summary['n_models']} models" if "n_models" in summary
             else f"{summary['n_subjects']} subjects")
    print(f"evaluated {', '.join(summary['methods'])} on {scope}: {run_dir}/verdict.md")


main = hydra_entry(_main, "evaluate")

if __name__ == "__main__":
    main()

"""Faithfulness of relevance maps: do the maps show what the network uses?

Plain functions on arrays and Keras models, each usable without Hydra or the pipeline, and the
scoring of a training run's methods that the evaluate stage runs:

* :mod:`~brainage.faithfulness.perturbation` — region perturbation and AOPC (Samek et al. 2017);
* :mod:`~brainage.faithfulness.randomisation` — cascading parameter randomisation (Adebayo et al.
  2018) and the map similarities it uses;
* :mod:`~brainage.faithfulness.localisation` — relevance mass ratio and AUC against a known mask;
* :mod:`~brainage.faithfulness.profiles` — how local and how subject-specific maps are;
* :mod:`~brainage.faithfulness.statistics` — mean ± SE, per group;
* :mod:`~brainage.faithfulness.class_maps` — youngest- vs oldest-class map correlation;
* :mod:`~brainage.faithfulness.conservation` — conservation / completeness error per method;
* :mod:`~brainage.faithfulness.ground_truth` — the synthetic cohort's ground truth on the crop;
* :mod:`~brainage.faithfulness.targets` — target modes and the scored (method, target) pairs;
* :mod:`~brainage.faithfulness.settings` — the checks' settings (``ScoringSettings``);
* :mod:`~brainage.faithfulness.inputs` — the scored subjects and what maps are scored against;
* :mod:`~brainage.faithfulness.scoring` — every check on every pair (``Evaluation``);
* :mod:`~brainage.faithfulness.tables` — the per-subject results summarised and written;
* :mod:`~brainage.faithfulness.scorecard` — one row per pair with every check's number;
* :mod:`~brainage.faithfulness.checks` — each row's pass/fail against the thresholds
  (``scorecard:`` in ``configs/evaluate.yaml``);
* :mod:`~brainage.faithfulness.default_choice` — the rule that picks the default DTD variant;
* :mod:`~brainage.faithfulness.regression` — scoring an age regressor's one output (what is
  skipped, refused and not applicable, and the sign conventions);
* :mod:`~brainage.faithfulness.aggregate` — several models' scorecards as mean ± SD;
* :mod:`~brainage.faithfulness.evaluation` — the evaluate stage's work on one training run (and
  the files of any scored model);
* :mod:`~brainage.faithfulness.several_runs` — several training runs (``train_dirs``) as one;
* :mod:`~brainage.faithfulness.ensemble_scoring` — their ensemble scored as one more model.

Maps and inputs are channels-last arrays ``(batch, *spatial, channels)`` with any number of spatial
axes, so the metrics work for 2-D digits and 3-D brains alike.
"""
from brainage.faithfulness.aggregate import summarise_scorecards
from brainage.faithfulness.checks import apply_checks
from brainage.faithfulness.class_maps import map_correlations
from brainage.faithfulness.default_choice import DefaultChoice, choose_default
from brainage.faithfulness.localisation import localisation_scores
from brainage.faithfulness.perturbation import (
    BASELINES,
    PatchTiling,
    PerturbationResult,
    logit_function,
    make_baseline,
    patch_labels,
    patch_relevance,
    random_maps,
    region_perturbation,
)
from brainage.faithfulness.profiles import map_profile
from brainage.faithfulness.randomisation import (
    cascade_groups,
    cascading_randomisation,
    insensitive_methods,
    map_similarity,
    randomisation_cascade,
)
from brainage.faithfulness.statistics import mean_se, mean_se_table

__all__ = [
    "BASELINES",
    "DefaultChoice",
    "PatchTiling",
    "PerturbationResult",
    "apply_checks",
    "choose_default",
    "map_correlations",
    "summarise_scorecards",
    "cascade_groups",
    "cascading_randomisation",
    "insensitive_methods",
    "localisation_scores",
    "logit_function",
    "make_baseline",
    "map_profile",
    "map_similarity",
    "mean_se",
    "mean_se_table",
    "patch_labels",
    "patch_relevance",
    "random_maps",
    "randomisation_cascade",
    "region_perturbation",
]

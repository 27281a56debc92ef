"""Scoring an age regressor (issue #13): class-needing targets refused, class-contrasting
explainers skipped, class maps not applicable (n/a, not a fail), and the sign of region
perturbation on the age output checked against a hand computation on a linear "age" model."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from brainage.errors import EvaluateError
from brainage.faithfulness.checks import apply_checks
from brainage.faithfulness.default_choice import choose_default
from brainage.faithfulness.perturbation import region_perturbation
from brainage.faithfulness.regression import (
    REGRESSION_NOT_APPLICABLE,
    check_regression_request,
    needs_classes,
    regression_methods,
    regression_subjects,
    regression_summary,
)
from brainage.faithfulness.several_runs import one_task as _one_task
from brainage.faithfulness.targets import parse_target_mode
from brainage.reporting.scorecard_cells import regression_notes, scorecard_cells

GOALS = SimpleNamespace(randomisation_step="dense1", max_rand_spearman=0.5,
                        max_class_map_correlation=0.3, aopc_within_se=1.0, min_loc_auc=0.75,
                        max_control_ratio=1.0, max_conservation_error=1e-5)
METHODS = {"dtd": {"name": "dtd", "contrast": None}, "dtd_vs_mean": {"name": "dtd", "contrast": "mean"},
           "clrp": {"name": "clrp", "dual": "others"}, "sglrp": {"name": "sglrp"},
           "gradcam": {"name": "gradcam", "layer": "b", "contrast": None}}


def test_explainers_that_contrast_classes_are_skipped_with_the_reason():
    kept, skipped = regression_methods(METHODS)
    assert list(kept) == ["dtd", "gradcam"]
    assert skipped == {"dtd_vs_mean": "contrast=mean contrasts classes",
                       "clrp": "clrp contrasts the explained class with the other classes",
                       "sglrp": "sglrp contrasts the explained class with the other classes"}
    assert needs_classes({"name": "deeplift", "contrast": None}) is None
    with pytest.raises(EvaluateError, match=r"explainer=\['clrp', 'dtd_vs_mean'\]: every selected "
                                            "explainer needs classes"):
        regression_methods({k: METHODS[k] for k in ("clrp", "dtd_vs_mean")})


@pytest.mark.parametrize("targets, pairs, message", [
    (["true"], [], "target 'true': the class anchor 'true' needs classes, but the training run "
                   "RUN is a regression"),
    (["predicted", 2], [], "target '2': the class anchor 2 needs classes"),
    (["true-vs-mean"], [], "target 'true-vs-mean': the class anchor 'true' needs classes"),
    (["predicted-vs-mean"], [], "target 'predicted-vs-mean': the contrast '-vs-mean' needs classes"),
    (["predicted"], ["dtd:predicted-logodds"], "pairs: 'dtd:predicted-logodds': the contrast "
                                               "'-logodds' needs classes"),
    (["predicted"], ["clrp:predicted"], "pairs: 'clrp:predicted': clrp is skipped on the "
                                        "regression run RUN"),
])
def test_class_targets_asked_for_are_refused(targets, pairs, message):
    _, skipped = regression_methods(METHODS)
    modes = [parse_target_mode(t) for t in targets]
    with pytest.raises(EvaluateError, match=message):
        check_regression_request(modes, pairs, skipped, "RUN")


def test_the_age_output_is_accepted_as_predicted_or_output_zero():
    check_regression_request([parse_target_mode("predicted"), parse_target_mode(0)],
                             ["dtd:predicted", "gradcam:0"], {}, "RUN")


def _card(conservation=(1e-7, 1e-7, np.nan)):
    return pd.DataFrame({
        "method": ["dtd", "gradient", "random"], "target": "predicted",
        "explainer": ["dtd", "gradient", "random"], "aopc": [2.0, 1.0, 0.1],
        "aopc_se": [0.1, 0.1, 0.1], "rand_spearman_dense1": [0.2, 0.9, np.nan],
        "class_map_correlation": np.nan, "loc_auc": [0.9, 0.6, 0.5], "control_ratio": np.nan,
        "conservation_error": list(conservation), "conservation_n": [6, 6, np.nan]})


def test_class_maps_are_not_applicable_not_a_fail():
    card = apply_checks(_card(), GOALS, tuple(REGRESSION_NOT_APPLICABLE))
    assert (card["pass_class_maps"] == "n/a").all()
    dtd, gradient = card.iloc[0], card.iloc[1]
    assert dtd["verdict"] == "pass" and (dtd["goals_met"], dtd["goals_measured"]) == (4, 4)
    assert "class_maps" not in gradient["verdict"]
    assert gradient["verdict"] == "fails: randomisation, aopc, localisation"
    # Without the exemption a missing class-map number is "not measured", as for a classifier.
    classifier = apply_checks(_card(), GOALS)
    assert classifier.iloc[0]["verdict"] == "not measured: class_maps"
    assert classifier.iloc[0]["goals_met"] == 4 and classifier.iloc[0]["goals_measured"] == 4
    with pytest.raises(ValueError, match="not_applicable: \\['class_map'\\] are not checks"):
        apply_checks(_card(), GOALS, ("class_map",))


def test_the_scorecard_text_counts_goals_out_of_the_applicable_checks():
    card = apply_checks(_card(), GOALS, tuple(REGRESSION_NOT_APPLICABLE))
    cells = scorecard_cells(card, "dense1")
    assert cells.loc[0, "class-map |r|"] == "n/a" and cells.loc[0, "goals"] == "4/4"
    assert cells.loc[1, "goals"] == "1/4" and cells.loc[2, "goals"] == ""
    assert scorecard_cells(apply_checks(_card(), GOALS), "dense1").loc[0, "goals"] == "4/5"
    choice = choose_default(card)
    assert "**dtd** (target predicted), 4 of 4 goals met." in choice.sentence(4)
    notes = regression_notes(regression_summary({"clrp": "clrp contrasts"}))
    assert notes[0].startswith("Regression run: every map explains the predicted age (years)")
    assert "class maps: n/a" in notes[1] and "goals are out of 4" in notes[1]
    assert notes[2] == "Skipped (they need classes): clrp (clrp contrasts)."
    assert regression_notes({"methods": ["dtd"]}) == []


def test_the_subjects_table_names_the_predicted_age():
    subjects = pd.DataFrame({"subject_id": ["a"], "age": [30.0], "bin": [0], "predicted": [0],
                             "logit_0": [33.5]})
    assert list(regression_subjects(subjects).columns) == ["subject_id", "age", "bin",
                                                           "predicted_age"]


def test_models_of_different_tasks_are_not_averaged():
    assert _one_task([{"train_dir": "a", "task": "regression"}, {"train_dir": "b",
                                                                  "task": "regression"}])
    assert not _one_task([{"train_dir": "a"}, {"train_dir": "b"}])
    with pytest.raises(EvaluateError, match="train_dirs mixes tasks.*a is a regression, b is a "
                                            "classification"):
        _one_task([{"train_dir": "a", "task": "regression"}, {"train_dir": "b"}])


def test_most_relevant_first_lowers_the_predicted_age_of_a_linear_age_model():
    """age(x) = 20 + Σ w·x: the exact relevance of x against a zero baseline is w·x (it sums to
    age − 20). Removing the most relevant patches first lowers the age step by step, by exactly
    their relevance: AOPC > 0 in years, and a reversed map gives a smaller AOPC."""
    rng = np.random.default_rng(0)
    w = rng.uniform(0.0, 2.0, (4, 6, 1))
    x = rng.uniform(0.2, 1.0, (3, 4, 6, 1))

    def predict(inputs):
        return (20.0 + (np.asarray(inputs, float) * w).sum(axis=(1, 2, 3)))[:, None]

    maps = x * w
    baseline = np.zeros_like(x)
    res = region_perturbation(predict, x, maps, [0, 0, 0], baseline, patch=2, steps=3,
                              patches_per_step=1)
    ages = predict(x)[:, 0]
    np.testing.assert_allclose(res.logits[:, 0], ages)
    patch_sums = np.stack([[m[i:i + 2, j:j + 2].sum() for i in (0, 2) for j in (0, 2, 4)]
                           for m in maps[..., 0]])
    top = -np.sort(-patch_sums, axis=1)[:, :3]
    expected = np.concatenate([np.zeros((3, 1)), np.cumsum(top, axis=1)], axis=1)
    np.testing.assert_allclose(res.drops, expected, rtol=1e-6)
    assert (np.diff(res.logits, axis=1) < 0).all()  # the predicted age falls
    np.testing.assert_allclose(res.aopc, expected.mean(axis=1), rtol=1e-6)
    reversed_ = region_perturbation(predict, x, -maps, [0, 0, 0], baseline, patch=2, steps=3,
                                    patches_per_step=1)
    assert (reversed_.aopc < res.aopc).all()

"""The model's test skill read before maps are judged, and when it voids a planted localisation."""
from types import SimpleNamespace

import pytest

from brainage.faithfulness.model_skill import localisation_void, model_skill
from brainage.reporting.scorecard_cells import describe_skill

CLASSIFIER = {"test_accuracy": 0.75, "test_balanced_accuracy": 0.72,
              "test_accuracy_ci95": [0.58, 0.86], "test_n": 36}
REGRESSOR = {"task": "regression", "mae": 6.1, "r2": 0.55, "r2_ci95": [0.3, 0.7], "test_n": 18}


def _localisation(mask="planted"):
    return SimpleNamespace(mask=mask, min_model_accuracy=0.9, min_model_r2=0.8)


def test_a_classifier_is_judged_on_balanced_accuracy_and_a_regressor_on_r2():
    assert model_skill(CLASSIFIER) == {"measure": "test balanced accuracy", "value": 0.72,
                                       "ci95": [0.58, 0.86], "n": 36}
    assert model_skill(REGRESSOR) == {"measure": "test R²", "value": 0.55, "ci95": [0.3, 0.7],
                                      "n": 18}
    assert model_skill({"test_n": 0})["value"] is None  # no test subjects: unknown
    assert describe_skill(model_skill(CLASSIFIER)) == \
        "test balanced accuracy 0.720 (95 % CI 0.580–0.860, 36 subjects)"


@pytest.mark.parametrize("metrics, key", [(CLASSIFIER, "min_model_accuracy=0.9"),
                                          (REGRESSOR, "min_model_r2=0.8")])
def test_a_model_below_its_threshold_voids_only_a_planted_localisation(metrics, key):
    why = localisation_void(model_skill(metrics), _localisation())
    assert f"localisation.{key}" in why and "did not learn the plant" in why
    assert localisation_void(model_skill(metrics), _localisation("effect")) is None


def test_a_model_that_learnt_the_plant_or_reports_no_skill():
    learnt = {**CLASSIFIER, "test_balanced_accuracy": 0.97}
    assert localisation_void(model_skill(learnt), _localisation()) is None
    assert "unknown whether the model learnt" in localisation_void(model_skill({}), _localisation())

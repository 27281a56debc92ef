"""A regression ensemble's age-bias correction: one shared validation split gives the fit on the
members' mean validation predictions; different splits, the mean of the members' corrections."""
import numpy as np
import pytest

from brainage.data.age_gap import AgeBiasCorrection
from brainage.ensemble.correction import EnsembleCorrection


@pytest.fixture
def validation(rng):
    ages = rng.uniform(20, 80, 12)
    predicted = np.stack([0.6 * ages + 18 + rng.normal(0, 3, 12),
                          0.7 * ages + 12 + rng.normal(0, 3, 12)])
    return ages, predicted


def test_with_one_validation_split_it_is_the_fit_on_the_members_mean_predictions(validation):
    ages, predicted = validation
    members = tuple(AgeBiasCorrection.fit(ages, p) for p in predicted)
    ensemble = EnsembleCorrection(members, shared_validation=True)
    fitted = AgeBiasCorrection.fit(ages, predicted.mean(axis=0))
    assert ensemble.mean.as_dict() == pytest.approx(fitted.as_dict(), rel=1e-9)
    table = ensemble.table(["a", "b"], [40.0, 60.0], np.array([[41.0, 55.0], [45.0, 59.0]]))
    np.testing.assert_allclose(table["predicted_age"], [43.0, 57.0])
    np.testing.assert_allclose(table["predicted_age_corrected"],
                               fitted.corrected_prediction([43.0, 57.0]))
    summary = ensemble.summary(["A/metrics.json", "B/metrics.json"])
    assert summary["correction"] == pytest.approx(fitted.as_dict(), rel=1e-9)


def test_with_different_splits_the_members_corrections_are_applied_and_averaged(validation):
    ages, predicted = validation
    members = (AgeBiasCorrection.fit(ages[:6], predicted[0, :6]),
               AgeBiasCorrection.fit(ages[6:], predicted[1, 6:]))
    ensemble = EnsembleCorrection(members, shared_validation=False)
    subjects = np.array([[41.0, 55.0], [45.0, 59.0]])
    true = np.array([40.0, 60.0])
    table = ensemble.table(["a", "b"], true, subjects)
    corrected = np.mean([c.corrected_prediction(p) for c, p in zip(members, subjects)], axis=0)
    np.testing.assert_allclose(table["predicted_age_corrected"], corrected)
    np.testing.assert_allclose(table["gap_prediction_corrected"], corrected - true)
    np.testing.assert_allclose(table["gap_corrected"],
                               np.mean([c.corrected_gap(true, p) for c, p in zip(members, subjects)],
                                       axis=0))
    summary = ensemble.summary(["A/metrics.json", "B/metrics.json"])
    assert summary["correction"] is None and len(summary["members"]) == 2
    assert "differ" in summary["fitted_on"]

"""The run's summary says plainly when a baseline beat the network, and what does better."""
import pytest

from brainage.training.baseline_verdict import baseline_verdict, beating_baselines


def regression(mae, **baselines):
    return {"mae": mae, "baselines": {name: {"mae": value} for name, value in baselines.items()}}


def classifier(accuracy, **baselines):
    return {"test_accuracy": accuracy,
            "baselines": {name: {"test_accuracy": value} for name, value in baselines.items()}}


def test_a_lower_mae_beats_a_regressor_and_the_documented_setting_is_named():
    metrics = regression(2.78, ridge_age_regions=1.51, ridge_age_blocks=3.1)
    assert beating_baselines(metrics, regression=True) == [("ridge_age_regions", 1.51)]
    verdict = baseline_verdict(metrics, True, "trainer.epochs=30 trainer.lr_schedule=cosine")
    assert verdict == ("A baseline beat the network: test MAE 2.78 y against ridge_age_regions 1.51 y. "
                       "A documented setting that does better: trainer.epochs=30 trainer.lr_schedule=cosine")


def test_a_higher_accuracy_beats_a_classifier_and_without_a_setting_says_so():
    metrics = classifier(0.75, logistic_regions=0.9, logistic_blocks=0.75)
    verdict = baseline_verdict(metrics, False, None)
    assert verdict == ("A baseline beat the network: test accuracy 75.0 % against logistic_regions "
                       "90.0 %. No documented setting of this experiment beats it yet.")


@pytest.mark.parametrize("metrics, is_regression", [
    (regression(1.1, ridge_age_regions=1.51), True),
    (regression(1.1, ridge_age_regions=1.1), True),          # a tie is not a win
    (classifier(0.944, logistic_regions=0.917), False),
    ({"mae": 1.0}, True),                                   # no baselines fitted
    (regression(1.0, logistic_blocks=None), True),          # a bin baseline has no MAE
])
def test_a_network_ahead_of_every_baseline_gets_no_verdict(metrics, is_regression):
    assert baseline_verdict(metrics, is_regression, "anything") is None

"""An ensemble's prediction and maps from its members': means, SDs, agreement, checked on arrays
small enough to work out by hand."""
import numpy as np

from brainage.ensemble.combine import AgeSpread, ClassSpread, MapSpread, ensemble_classes, softmax


def test_the_ensemble_bin_is_the_argmax_of_the_mean_probabilities_not_a_vote():
    # two members say bin 0 narrowly, one says bin 1 with conviction: the mean says bin 1
    probabilities = np.array([[[0.55, 0.45]], [[0.55, 0.45]], [[0.01, 0.99]]])
    spread = ClassSpread.of(np.log(probabilities))
    np.testing.assert_allclose(spread.probabilities, [[0.37, 0.63]])
    assert list(spread.predicted) == [1] and list(spread.agreeing) == [1]
    np.testing.assert_allclose(spread.sd, [[np.std([0.55, 0.55, 0.01], ddof=1)] * 2])
    assert list(ensemble_classes(np.log(probabilities), regression=False)) == [1]
    assert list(ensemble_classes(np.ones((3, 4, 1)), regression=True)) == [0, 0, 0, 0]


def test_softmax_does_not_overflow_and_sums_to_one():
    p = softmax(np.array([[1000.0, 1001.0, 999.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1)
    assert p.argmax() == 1


def test_age_spread_is_the_mean_sd_minimum_and_maximum_across_members():
    spread = AgeSpread.of(np.array([[30.0, 50.0], [34.0, 50.0], [38.0, 56.0]]))
    np.testing.assert_allclose(spread.mean, [34.0, 52.0])
    np.testing.assert_allclose(spread.sd, [4.0, np.sqrt(12.0)])
    np.testing.assert_allclose(spread.low, [30.0, 50.0])
    np.testing.assert_allclose(spread.high, [38.0, 56.0])


def test_map_agreement_is_the_share_of_members_with_the_mean_sign_and_zero_where_the_mean_is():
    maps = np.array([[[1.0, -1.0, 0.0, 2.0]],
                     [[3.0, 1.0, 0.0, -1.0]],
                     [[-1.0, 0.0, 0.0, -1.0]]])
    spread = MapSpread.of(maps)
    np.testing.assert_allclose(spread.mean, [[1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(spread.agreement, [[2 / 3, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(spread.sd, [[2.0, 1.0, 0.0, np.sqrt(3.0)]])
    assert spread.mean.sum() == maps.sum(axis=(1, 2)).mean()  # the mean map sums to the mean sum

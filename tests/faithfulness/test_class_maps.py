"""Youngest- vs oldest-class map correlation with known answers."""
import numpy as np
import pytest

from brainage.faithfulness.class_maps import map_correlations


def test_map_correlations_known_answers(rng):
    shape = (3, 6, 7, 5, 1)
    pattern = rng.uniform(0.1, 1, shape)
    other = rng.standard_normal(shape)
    # A rank-one map (one pattern scaled by the output) is the same map for every class: r = ±1.
    np.testing.assert_allclose(map_correlations(pattern, 2.5 * pattern), 1.0)
    np.testing.assert_allclose(map_correlations(pattern, -0.3 * pattern), -1.0)
    assert np.all(np.abs(map_correlations(pattern, other)) < 0.35)
    brain = np.zeros(shape[1:-1], bool)
    brain[1:5, 1:6, 1:4] = True
    moved = pattern.copy()
    moved[:, ~brain] = 99.0  # outside the brain: must not count
    np.testing.assert_allclose(map_correlations(pattern, moved, brain), 1.0)
    flat = np.zeros(shape)
    assert np.isnan(map_correlations(pattern, flat)).all()  # a constant map: r undefined
    with pytest.raises(ValueError, match="cannot be compared"):
        map_correlations(pattern, pattern[:2])

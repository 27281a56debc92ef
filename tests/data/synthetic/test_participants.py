"""Ages, sexes and sites of a synthetic cohort."""
import numpy as np
import pytest

from brainage.data import synthetic as sy


@pytest.mark.parametrize(
    ("distribution", "n", "counts"),
    [("pac2019", 1000, [657, 300, 43]), ("balanced", 301, [101, 100, 100]), ("balanced", 150, [50, 50, 50])],
)
def test_age_distributions(distribution, n, counts):
    ages = sy.sample_ages(n, distribution, np.random.default_rng(0))
    assert np.bincount(np.digitize(ages, [40, 70]), minlength=3).tolist() == counts
    assert ages.min() >= 17 and ages.max() <= 90
    np.testing.assert_allclose(ages * 10, np.round(ages * 10), atol=1e-6)


def test_uniform_ages_cover_the_range():
    ages = sy.sample_ages(2000, "uniform", np.random.default_rng(1), age_min=20, age_max=60)
    assert 20 <= ages.min() < 21 and 59 < ages.max() <= 60
    assert abs(np.median(ages) - 40) < 2


def test_participants_are_seeded_and_sites_in_range():
    settings = sy.SyntheticSettings(seed=4, n_sites=2)
    table, sites = sy.draw_participants(12, settings)
    again, _ = sy.draw_participants(12, settings)
    assert table.equals(again) and len(sites) == 2
    assert table["subject_id"].tolist()[:2] == ["sub-0001", "sub-0002"]
    assert set(table["site"]) <= {0, 1} and set(table["sex"]) <= {"F", "M"}
    other, _ = sy.draw_participants(12, sy.SyntheticSettings(seed=5, n_sites=2))
    assert not table["age"].equals(other["age"])

"""A small oblique grid and one cohort generated on it, shared by the generator's tests."""
import pytest

from brainage.data import synthetic as sy
from tests.data.synthetic.cohort_files import oblique_grid


@pytest.fixture(scope="package")
def small_grid():
    return oblique_grid()


@pytest.fixture(scope="package")
def cohort(small_grid, tmp_path_factory):
    """36 subjects, uniform ages, seed 3 (tests must not change it)."""
    root = tmp_path_factory.mktemp("synthetic") / "cohort"
    return sy.generate_cohort(root, 36, seed=3, age_distribution="uniform", grid=small_grid, n_jobs=1,
                              progress=False)

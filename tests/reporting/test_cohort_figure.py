"""The synthetic cohort's figure is drawn on a Figure object, never through pyplot."""
import functools

import pytest
from matplotlib.figure import Figure

from brainage.data import synthetic as sy
from brainage.reporting import cohort_figure as cf
from tests.data.synthetic.cohort_files import oblique_grid


@pytest.fixture(scope="module")
def young_and_old(tmp_path_factory):
    root = tmp_path_factory.mktemp("figure") / "cohort"
    return sy.generate_cohort(root, 3, seed=1, ages=[21.0, 50.0, 84.0], grid=oblique_grid(), n_jobs=1,
                              progress=False)


@pytest.mark.slow
def test_plot_examples_writes_a_png(young_and_old, tmp_path):
    import matplotlib.pyplot as plt

    out = cf.plot_examples(young_and_old, tmp_path / "fig" / "cohort.png")
    assert out.is_file() and out.read_bytes()[:4] == b"\x89PNG"
    assert plt.get_fignums() == []


def test_figure_shows_the_subjects_closest_to_the_ages(young_and_old):
    fig = cf.cohort_figure(young_and_old, ages=(20, 85), cuts_mm=(("z", -14.0),))
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes] + [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("sub-0001, age 21" in t for t in titles)
    assert any("sub-0003, age 84" in t for t in titles)
    assert not any("sub-0002" in t for t in titles)


def test_readme_figure_draws_a_20_and_an_85_year_old(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(cf, "generate_cohort", functools.partial(sy.generate_cohort, grid=oblique_grid()))
    monkeypatch.setattr(cf, "plot_examples", lambda root, out: drawn.append(
        (sy.read_cohort_record(root)["ages"], out)) or out)
    assert cf.make_readme_figure(tmp_path / "readme.png") == tmp_path / "readme.png"
    assert drawn == [([20.0, 85.0], tmp_path / "readme.png")]

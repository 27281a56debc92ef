"""The digits figures are Figure objects of the expected layout, outside pyplot's state."""
import numpy as np
from matplotlib.figure import Figure

from brainage.digits.experiment import MisclassifiedDigit
from brainage.digits.figures import examples_figure, misclassified_figure


def test_examples_figure_has_four_rows_per_picked_digit(rng):
    x = rng.uniform(0, 1, (5, 9, 9, 1))
    maps = rng.standard_normal((3, 5, 9, 9, 1))
    logits = rng.standard_normal((5, 3))
    fig = examples_figure("toy", x, np.arange(5) % 3, logits, maps, [0, 3], 0.8, "note")
    assert isinstance(fig, Figure) and fig.canvas.manager is None  # not registered with pyplot
    assert len(fig.axes) == 8
    assert "test accuracy 80.0 %" in fig._suptitle.get_text()


def test_misclassified_figure_says_when_a_network_has_none(rng, tmp_path):
    image, m = rng.uniform(0, 1, (9, 9, 1)), rng.standard_normal((9, 9, 1))
    fig = misclassified_figure([("dense", MisclassifiedDigit(image, 3, 5, m, -m)), ("cnn", None)], "note")
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title() == "dense: a 3 classified as 5"
    assert fig.axes[3].get_title() == "cnn: no misclassified test digit"
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0

"""Figures of a training run, as Figure objects without pyplot."""
from matplotlib.figure import Figure

from brainage.reporting.training_figures import confusion_matrix_figure, training_curves_figure


def test_training_curves_mark_the_best_epoch(tmp_path):
    history = [{"epoch": e, "loss": 1 / e, "accuracy": e / 4, "val_loss": 1.2 / e,
                "val_accuracy": e / 5} for e in (1, 2, 3)]
    fig = training_curves_figure(history, best_epoch=2)
    assert isinstance(fig, Figure)
    loss, accuracy = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert list(loss.lines[0].get_xdata()) == [1, 2, 3]
    assert list(accuracy.lines[1].get_ydata()) == [0.2, 0.4, 0.6]
    assert "best (epoch 2)" in [t.get_text() for t in loss.get_legend().get_texts()]
    fig.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_confusion_matrix_counts_and_title():
    fig = confusion_matrix_figure([[3, 1, 0], [0, 2, 2], [0, 0, 4]], ["10-39", "40-69", "70-100"])
    ax = fig.axes[0]
    assert ax.get_title() == "test set: 9 of 12 correct"
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0", "0", "2", "2", "0", "0", "4"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10-39", "40-69", "70-100"]


def test_confusion_matrix_shows_the_95_percent_intervals(tmp_path):
    fig = confusion_matrix_figure([[3, 1, 0], [0, 2, 2], [0, 0, 4]], ["10-39", "40-69", "70-100"],
                                  accuracy_ci=[0.4281, 0.9108],
                                  per_bin_ci=[[0.3006, 0.9544], [0.15, 0.85], None])
    ax = fig.axes[0]
    assert ax.get_title() == "test set: 9 of 12 correct\naccuracy 75.0 % (95 % CI 42.8-91.1)"
    texts = [t.get_text() for t in ax.texts]
    assert texts[9:] == ["75 %\n[30, 95]", "50 %\n[15, 85]"]  # a bin without interval: nothing
    fig.savefig(tmp_path / "cm.png")

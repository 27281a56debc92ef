"""training_data: the run's cohort with the split the model was trained on, a fold's included."""
import numpy as np
import pytest
from omegaconf import OmegaConf

from brainage.errors import TrainedRunError
from brainage.trained.cohort import training_data
from brainage.trained.run import TrainRun
from tests.builders import tiny_data


def _run(tmp_path, split, trainer):
    cfg = OmegaConf.create({"seed": 0, "data": {"name": "tiny"}, "trainer": trainer})
    return TrainRun(tmp_path, tmp_path / "model.keras", cfg, split)


@pytest.fixture
def data(monkeypatch):
    prepared = tiny_data()
    monkeypatch.setattr("brainage.data.cohort.prepare_data", lambda *args, **kwargs: prepared)
    return prepared


def test_a_fold_gets_the_split_it_was_trained_on(tmp_path, data):
    split = data.table[["subject_id", "split"]].copy()
    split["split"] = np.roll(split["split"].to_numpy(), 7)         # the fold's own split
    fold = training_data(_run(tmp_path, split, {"cv_folds": 5, "cv_fold": 2}), {}, False)
    assert list(fold.table["split"]) == list(split["split"])
    assert list(fold.indices("test")) == list(np.flatnonzero(split["split"] == "test"))
    assert list(data.table["split"]) != list(split["split"])         # the data stage's is left alone


def test_a_run_whose_split_or_subjects_changed_is_refused(tmp_path, data):
    split = data.table[["subject_id", "split"]].copy()
    split["split"] = np.roll(split["split"].to_numpy(), 7)
    with pytest.raises(TrainedRunError, match="no longer reproduces"):
        training_data(_run(tmp_path, split, {"cv_folds": None, "cv_fold": None}), {}, False)
    fewer = data.table[["subject_id", "split"]].iloc[1:]
    with pytest.raises(TrainedRunError, match="no longer reproduces"):
        training_data(_run(tmp_path, fewer, {"cv_folds": 5, "cv_fold": 2}), {}, False)

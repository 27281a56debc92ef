"""The epoch callbacks' bookkeeping, without training: best epoch, early stopping, run state."""
import math

import pytest

from brainage.errors import TrainError
from brainage.training.callbacks import BestEpoch
from brainage.training.checkpoint import RunState


class FakeModel:
    stop_training = False


def _epochs(values, monitor="val_loss", maximise=False, patience=None, epochs=10):
    state = RunState()
    tracker = BestEpoch(state, monitor, maximise, patience, epochs)
    tracker.set_model(FakeModel())
    for epoch, value in enumerate(values):
        tracker.on_epoch_end(epoch, {monitor: value, "loss": 1.0})
    return state, tracker.model


def test_best_epoch_and_wait_follow_the_monitor():
    state, model = _epochs([1.0, 0.8, 0.9, float("nan"), 0.85])
    assert (state.best_epoch, state.best_value, state.wait) == (2, 0.8, 3)
    assert not state.stopped_early and not model.stop_training
    state, _ = _epochs([0.5, 0.7, 0.6], monitor="val_accuracy", maximise=True)
    assert (state.best_epoch, state.best_value, state.wait) == (2, 0.7, 1)


def test_early_stopping_after_patience_but_not_on_the_last_epoch():
    state, model = _epochs([1.0, 1.1, 1.2], patience=2)
    assert state.stopped_early and model.stop_training and state.best_epoch == 1
    state, model = _epochs([1.0, 1.1, 1.2], patience=2, epochs=3)
    assert not state.stopped_early and not model.stop_training


def test_a_monitor_that_is_not_logged_is_named():
    tracker = BestEpoch(RunState(), "val_auc", True, None, 3)
    with pytest.raises(TrainError, match=r"trainer.monitor='val_auc' is not logged; available: "
                                         r"loss, val_loss"):
        tracker.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})


def test_run_state_round_trips_with_infinities(tmp_path):
    state = RunState(epochs_done=2, history=[{"epoch": 1}], best_value=0.5, best_epoch=1,
                     plateau={"wait": 1, "best": math.inf, "cooldown_counter": 0})
    state.save(tmp_path)
    assert RunState.load(tmp_path) == state
    assert not list(tmp_path.glob("*.tmp"))

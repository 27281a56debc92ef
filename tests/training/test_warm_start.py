"""Starting a training run from another run's weights (``trainer.init_from``): which layers are
copied and which stay fresh, the refusals, resumption (the checkpoint wins) and ``metrics.json``."""
import json

import numpy as np
import pytest

from brainage.errors import TrainError
from brainage.runs import RunRecord
from brainage.training.checkpoint import CHECKPOINT_DIR, STATE_FILE, RunState
from brainage.training.settings import TrainSettings
from brainage.training.warm_start import copy_matching_weights, source_model_path, warm_start
from tests.builders import SHAPE, compose_train, exit_status, tiny_data

CONVS = ["block1_conv_a", "block1_conv_b", "block1_bn"]


def _tiny(shape=SHAPE, widths=(2,), dense_units=4, regression=False):
    """A one-block network on ``shape`` (7 x 8 x 9 fits one block); fresh random weights."""
    from brainage.model import build_model

    return build_model(input_shape=tuple(shape) + (1,), widths=widths, dense_units=dense_units,
                       age_scale=(50.0, 12.0) if regression else None)


def _trained_looking(model, rng):
    """``model`` with every weight random, BN moving statistics included (which start at 0 and 1
    in a fresh model, so a copy of them would go unseen)."""
    model.set_weights([rng.normal(size=w.shape).astype("float32") ** 2 for w in model.get_weights()])
    return model


def _weights(model) -> dict:
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers
            if layer.weights}


def _assert_same(left: list, right: list):
    assert len(left) == len(right)
    for a, b in zip(left, right):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- which layers

def test_a_classifier_starts_a_regressor_all_but_its_output(rng):
    source = _trained_looking(_tiny(), rng)
    model = _tiny(regression=True)
    before = _weights(model)
    copied, fresh = copy_matching_weights(source, model)
    assert copied == [*CONVS, "dense1"]
    # the classifier's 3 logits against one standardised age; the fixed age affine keeps this
    # run's own mean and SD
    assert fresh == ["age_standardised", "age"]
    after, given = _weights(model), _weights(source)
    for name in copied:  # BN: gamma, beta, moving mean and variance
        _assert_same(after[name], given[name])
    for name in fresh:
        _assert_same(after[name], before[name])
    np.testing.assert_array_equal(after["age"][0], [[12.0]])


def test_layers_of_another_width_stay_fresh(rng):
    source = _trained_looking(_tiny(dense_units=6), rng)
    model = _tiny()
    before = _weights(model)
    copied, fresh = copy_matching_weights(source, model)
    assert copied == CONVS and fresh == ["dense1", "logits"]
    after = _weights(model)
    _assert_same(after["block1_bn"], _weights(source)["block1_bn"])
    for name in fresh:
        _assert_same(after[name], before[name])


def test_warm_start_copies_and_reports_the_source(tmp_path, rng):
    path = tmp_path / "source.keras"
    _trained_looking(_tiny(), rng).save(path)
    model = _tiny()
    record = warm_start(model, path)
    assert record == {"source": str(path), "copied": [*CONVS, "dense1", "logits"], "fresh": []}
    _assert_same(model.get_weights(), _tiny_loaded(path).get_weights())


def _tiny_loaded(path):
    import keras

    return keras.saving.load_model(path, compile=False)


# --------------------------------------------------------------------------- refusals

def test_a_source_for_another_grid_is_refused_naming_both_shapes(tmp_path):
    path = tmp_path / "source.keras"
    _tiny(shape=(9, 8, 7)).save(path)
    with pytest.raises(TrainError, match=r"source\.keras: its model takes inputs \(9, 8, 7, 1\), "
                                         r"this run's model \(7, 8, 9, 1\)"):
        warm_start(_tiny(), path)


def test_a_source_with_no_matching_layer_is_refused(tmp_path):
    path = tmp_path / "source.keras"
    _tiny(widths=(3,), dense_units=5).save(path)
    with pytest.raises(TrainError, match=r"source\.keras: no layer of its model matches this run's model"):
        warm_start(_tiny(), path)


def test_an_unreadable_source_is_refused(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("not a model")
    with pytest.raises(TrainError, match=r"cannot read .*model\.keras as a Keras model"):
        warm_start(_tiny(), path)


def _finished_run(run, state="finished"):
    run.mkdir(parents=True)
    (run / "model.keras").write_text("x")
    RunRecord("train").end(run, state, "boom" if state == "failed" else None)
    return run


@pytest.mark.parametrize("case, culprit", [
    ("missing", r"trainer\.init_from=.*none does not exist; pass a finished training run "
                r"directory"),
    ("no model", r"trainer\.init_from=.*empty holds no model\.keras"),
    ("failed run", r"the training run .*failed did not finish, its run\.json says failed \(boom\)"),
    ("model of a failed run", r"the training run .*failed did not finish"),
    ("not .keras", r"trainer\.init_from=.*weights\.h5 is neither a directory nor a \.keras file"),
])
def test_sources_that_are_not_finished_runs_are_refused(tmp_path, case, culprit):
    (tmp_path / "empty").mkdir()
    (tmp_path / "weights.h5").write_text("x")
    failed = _finished_run(tmp_path / "failed", state="failed")
    given = {"missing": tmp_path / "none", "no model": tmp_path / "empty",
             "failed run": failed, "model of a failed run": failed / "model.keras",
             "not .keras": tmp_path / "weights.h5"}[case]
    with pytest.raises(TrainError, match=culprit):
        source_model_path(given)


def test_a_finished_run_or_a_keras_file_is_a_source(tmp_path):
    run = _finished_run(tmp_path / "run")
    assert source_model_path(run) == run / "model.keras"
    assert source_model_path(str(run / "model.keras")) == run / "model.keras"
    loose = tmp_path / "epoch0003.keras"
    loose.write_text("x")
    assert source_model_path(loose) == loose


def test_the_stage_refuses_a_missing_source_in_one_line_before_loading_data(tmp_path, capsys,
                                                                            monkeypatch):
    from brainage.train import _main

    def must_not_load(*args, **kwargs):
        raise AssertionError("the data were loaded before trainer.init_from was checked")

    monkeypatch.setattr("brainage.data.cohort.prepare_data", must_not_load)
    run = tmp_path / "run"
    cfg = compose_train(f"trainer.init_from={tmp_path / 'none'}")
    assert exit_status(_main, cfg, run) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: trainer.init_from={tmp_path / 'none'} does not exist; pass a "
                      "finished training run directory (outputs/train/<date>_<time>) or a .keras "
                      "file"]
    assert "Traceback" not in err
    assert not (run / CHECKPOINT_DIR).exists()  # nothing to resume
    assert json.loads((run / "run.json").read_text())["state"] == "failed"


# --------------------------------------------------------------------------- settings, resumption

def test_every_member_and_fold_starts_from_the_same_source(tmp_path):
    settings = TrainSettings.from_cfg(compose_train(f"trainer.init_from={tmp_path}",
                                                    "trainer.ensemble=3"))
    assert settings.init_from == tmp_path
    assert settings.for_member(2).init_from == tmp_path
    folds = TrainSettings.from_cfg(compose_train(f"trainer.init_from={tmp_path}",
                                                 "trainer.cv_folds=3"))
    assert folds.for_fold(1).init_from == tmp_path
    assert TrainSettings.from_cfg(compose_train()).init_from is None


def test_a_fresh_model_starts_from_the_source_and_a_resumed_one_from_its_checkpoint(tmp_path):
    from brainage.training.model_setup import compiled_model

    data = tiny_data()
    settings = TrainSettings.from_cfg(compose_train(f"trainer.init_from={tmp_path / 'source.keras'}"))
    settings.model.build(data.input_shape, n_classes=3).save(tmp_path / "source.keras")
    checkpoint = tmp_path / CHECKPOINT_DIR
    checkpoint.mkdir()
    saved = settings.model.build(data.input_shape, n_classes=3)
    saved.save(checkpoint / "epoch0001.keras")
    source = _tiny_loaded(tmp_path / "source.keras").get_weights()

    fresh_state = RunState()
    fresh = compiled_model(settings, data, fresh_state, checkpoint, ["/device:CPU:0"])
    _assert_same(fresh.get_weights(), source)
    assert fresh_state.init_from["copied"][-1] == "logits" and not fresh_state.init_from["fresh"]

    recorded = {"source": "elsewhere", "copied": ["dense1"], "fresh": []}
    resumed_state = RunState(epochs_done=1, last_model="epoch0001.keras", init_from=recorded)
    resumed = compiled_model(settings, data, resumed_state, checkpoint, ["/device:CPU:0"])
    _assert_same(resumed.get_weights(), saved.get_weights())
    assert resumed_state.init_from is recorded


# --------------------------------------------------------------------------- the stage

class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_a_classifier_run_starts_a_regression_run_which_resumes_from_its_checkpoint(
        tmp_path, monkeypatch):
    import keras

    from brainage.train import train

    class InterruptAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise Interrupted

    tiny = ["trainer.baselines.enabled=false", "trainer.precise_bn.batches=2", "seed=4"]
    source = tmp_path / "classifier"
    train(compose_train("trainer.epochs=1", *tiny), run_dir=source, data=tiny_data())
    run = tmp_path / "regressor"
    with pytest.raises(Interrupted):
        train(compose_train("trainer.epochs=2", "model.task=regression", f"trainer.init_from={source}",
                            *tiny), run_dir=run, data=tiny_data(),
              callbacks=[InterruptAfterFirstEpoch()])
    recorded = json.loads((run / CHECKPOINT_DIR / STATE_FILE).read_text())["init_from"]
    assert recorded == {"source": str(source / "model.keras"),
                        "copied": ["block1_conv_a", "block1_conv_b", "block1_bn", "block2_conv_a",
                                   "block2_conv_b", "block2_bn", "dense1"],
                        "fresh": ["age_standardised", "age"]}

    def must_not_start_again(*args, **kwargs):
        raise AssertionError("a resumed run started from trainer.init_from again")

    monkeypatch.setattr("brainage.training.model_setup.warm_start", must_not_start_again)
    metrics = train(compose_train(f"trainer.resume={run}"), data=tiny_data())
    assert metrics["resumed"] is True and metrics["epochs_run"] == 2
    assert json.loads((run / "metrics.json").read_text())["init_from"] == recorded


@pytest.mark.slow
def test_every_ensemble_member_starts_from_the_source(tmp_path):
    from brainage.train import train
    from brainage.training.ensemble_run import member_dir

    data = tiny_data()
    source = tmp_path / "source.keras"
    cfg = compose_train("trainer.epochs=1", "trainer.ensemble=2", "trainer.baselines.enabled=false",
                        "trainer.precise_bn.batches=2", "seed=5", f"trainer.init_from={source}")
    TrainSettings.from_cfg(cfg).model.build(data.input_shape, n_classes=3).save(source)
    train(cfg, run_dir=tmp_path / "run", data=data)
    for member, seed in enumerate((5, 6)):
        metrics = json.loads((member_dir(tmp_path / "run", member, seed) / "metrics.json").read_text())
        assert metrics["init_from"]["source"] == str(source)
        assert metrics["init_from"]["copied"][-2:] == ["dense1", "logits"]

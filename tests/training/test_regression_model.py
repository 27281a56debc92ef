"""The regression head (issue #13): output in years through a fixed affine of the training ages,
its settings, and the loss it is compiled with."""
import keras
import numpy as np
import pytest

from brainage.errors import ModelError, TrainError
from brainage.model import ModelSettings, build_model
from brainage.training.model_setup import loss_and_metrics
from brainage.training.settings import TrainSettings
from tests.builders import compose_train

SHAPE = (20, 22, 19, 1)


def test_the_output_is_sd_times_the_standardised_age_plus_the_mean():
    model = build_model(SHAPE, widths=(2,), dense_units=4, age_scale=(47.5, 18.0))
    assert model.output_shape == (None, 1) and model.layers[-1].name == "age"
    head = model.get_layer("age")
    assert not head.trainable
    assert head.name not in {w.path.split("/")[0] for w in model.trainable_weights}
    z = model.get_layer("age_standardised")
    z.set_weights([np.zeros_like(z.get_weights()[0]), np.array([1.5], np.float32)])
    x = np.random.default_rng(0).uniform(0, 1, (2,) + SHAPE).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x))[:, 0], 47.5 + 18.0 * 1.5, rtol=1e-6)


@pytest.mark.slow
def test_training_leaves_the_standardisation_alone():
    keras.utils.set_random_seed(0)
    model = build_model(SHAPE, widths=(2,), dense_units=4, age_scale=(50.0, 20.0))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mae")
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (8,) + SHAPE).astype("float32")
    model.fit(x, rng.uniform(20, 80, 8).astype("float32"), epochs=2, verbose=0)
    kernel, bias = model.get_layer("age").get_weights()
    assert float(kernel[0, 0]) == 20.0 and float(bias[0]) == 50.0


def test_the_head_refuses_a_degenerate_age_spread():
    with pytest.raises(ModelError, match="positive SD"):
        build_model(SHAPE, widths=(2,), dense_units=4, age_scale=(40.0, 0.0))


def test_regression_settings_are_read_and_checked():
    settings = ModelSettings.from_cfg(compose_train("model.task=regression",
                                                    "model.regression_loss=mse").model)
    assert settings.is_regression and settings.regression_loss == "mse"
    with pytest.raises(ModelError, match="age_scale|mean and SD"):
        settings.build(SHAPE)
    assert settings.build(SHAPE, age_scale=(40.0, 10.0)).output_shape == (None, 1)
    default = ModelSettings.from_cfg(compose_train().model)
    assert default.task == "classification" and not default.is_regression
    with pytest.raises(ModelError, match="model.task='survival'"):
        ModelSettings.from_cfg(compose_train("model.task=survival").model)
    with pytest.raises(ModelError, match="model.regression_loss='huber'"):
        ModelSettings.from_cfg(compose_train("model.regression_loss=huber").model)


def test_an_accuracy_monitor_is_refused_for_a_regression():
    with pytest.raises(TrainError, match="trainer.monitor=val_accuracy with model.task=regression"):
        TrainSettings.from_cfg(compose_train("model.task=regression", "trainer.monitor=val_accuracy"))
    with pytest.raises(TrainError, match="needs model.task=regression"):
        TrainSettings.from_cfg(compose_train("trainer.monitor=val_mae"))
    # k-fold cross-validation of a regressor is accepted (folds stratified by age bin).
    settings = TrainSettings.from_cfg(compose_train("model.task=regression", "trainer.cv_folds=3"))
    assert settings.cv_folds == 3 and settings.model.is_regression


@pytest.mark.parametrize("loss, expected", [("mae", (1.0 + 3.0) / 2), ("mse", (1.0 + 9.0) / 2)])
def test_the_configured_loss_is_in_years(loss, expected):
    settings = TrainSettings.from_cfg(compose_train("model.task=regression",
                                                    f"model.regression_loss={loss}"))
    compiled = loss_and_metrics(settings)
    value = compiled["loss"](np.array([[30.0], [50.0]]), np.array([[31.0], [47.0]]))
    assert float(value) == pytest.approx(expected)
    assert [m.name for m in compiled["metrics"]] == ["mae"]
    assert settings.logged == ("loss", "mae", "val_loss", "val_mae")


def test_the_classifier_keeps_cross_entropy_and_accuracy():
    settings = TrainSettings.from_cfg(compose_train())
    compiled = loss_and_metrics(settings)
    assert isinstance(compiled["loss"], keras.losses.SparseCategoricalCrossentropy)
    assert settings.logged == ("loss", "accuracy", "val_loss", "val_accuracy")

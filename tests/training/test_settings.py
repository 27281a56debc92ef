"""TrainSettings: every value read from the YAML, bad settings refused before any work."""
import re

import pytest
from omegaconf import OmegaConf

from brainage.errors import TrainError
from brainage.model import ModelSettings
from brainage.training.settings import TrainSettings
from tests.builders import CONFIGS, compose_train


def test_settings_are_the_yaml_values():
    settings = TrainSettings.from_cfg(compose_train("~experiment", tiny=False))
    trainer = OmegaConf.load(CONFIGS / "trainer" / "default.yaml")
    for key in ("epochs", "batch_size", "learning_rate", "lr_schedule", "min_lr", "plateau_factor",
                "plateau_patience", "early_stopping_patience", "monitor", "mixed_precision",
                "deterministic", "distribution", "verbose"):
        assert getattr(settings, key) == trainer[key], key
    assert settings.resume is None and trainer.resume is None
    assert settings.init_from is None and trainer.init_from is None
    assert settings.max_shift == (trainer.augment.max_shift if trainer.augment.enabled else 0)
    data = OmegaConf.load(CONFIGS / "data" / "synthetic.yaml")
    assert (settings.stream_workers, settings.stream_prefetch) == (data.stream.workers,
                                                                   data.stream.prefetch)
    assert settings.seed == OmegaConf.load(CONFIGS / "train.yaml").seed
    assert settings.model == ModelSettings.from_cfg(OmegaConf.load(CONFIGS / "model" / "taylor2019.yaml"))
    assert settings.keras_verbosity == 1 and settings.maximise is False
    assert settings.precise_bn == trainer.precise_bn.enabled is True  # on by default
    assert settings.precise_bn_batches == trainer.precise_bn.batches
    assert settings.baselines.enabled == trainer.baselines.enabled is True
    assert list(settings.baselines.models) == list(trainer.baselines.models)
    assert settings.baselines.ridge_alphas == tuple(trainer.baselines.ridge_alphas)
    assert (settings.cv_folds, settings.cv_fold) == (trainer.cv_folds, trainer.cv_fold)
    assert settings.runs_every_fold is False


def test_overrides_reach_the_settings():
    settings = TrainSettings.from_cfg(compose_train(
        "trainer.augment.enabled=true", "trainer.augment.max_shift=3", "trainer.monitor=val_accuracy",
        "trainer.early_stopping_patience=0", "trainer.lr_schedule=null", "trainer.verbose=2",
        "trainer.resume=some/run"))
    assert settings.max_shift == 3 and settings.maximise is True
    assert settings.early_stopping_patience is None  # 0 and null: never stop early
    assert settings.lr_schedule == "none" and settings.keras_verbosity == 2
    assert str(settings.resume) == "some/run"
    assert settings.model.widths == (2, 4)  # the tiny model of the tests
    switched = TrainSettings.from_cfg(compose_train(
        "trainer.precise_bn.enabled=false", "trainer.precise_bn.batches=3",
        "trainer.baselines.enabled=false", "trainer.cv_folds=5"))
    assert switched.precise_bn is False and switched.precise_bn_batches == 3
    assert switched.baselines.enabled is False and switched.runs_every_fold
    fold = switched.for_fold(2)
    assert (fold.cv_fold, fold.config.trainer.cv_fold, fold.runs_every_fold) == (2, 2, False)
    assert switched.config.trainer.cv_fold is None  # the original is left alone


@pytest.mark.parametrize("override, message", [
    ("trainer.lr_schedule=step", "trainer.lr_schedule='step'; expected one of none, cosine, plateau"),
    ("trainer.monitor=val_acc", "trainer.monitor='val_acc'; expected one of val_loss"),
    ("trainer.distribution=model_parallel", "trainer.distribution='model_parallel'; expected one of auto"),
    ("trainer.epochs=0", "trainer.epochs=0; expected a positive number"),
    ("trainer.batch_size=-4", "trainer.batch_size=-4; expected a positive number"),
    ("data.stream.workers=0", "data.stream.workers=0; expected a positive number"),
    ("trainer.learning_rate=0", "trainer.learning_rate=0; expected a number > 0"),
    ("trainer.precise_bn.batches=0", "trainer.precise_bn.batches=0; expected a positive number"),
    ("trainer.epochs=many", "trainer.epochs='many'; expected a positive number"),
    ("trainer.mixed_precision=sometimes", "trainer.mixed_precision='sometimes'; expected true or false"),
    ("trainer.deterministic=null", "trainer.deterministic is null; expected true or false"),
    ("trainer.min_lr=-1", "trainer.min_lr=-1; expected a rate >= 0 or null (no floor)"),
    ("trainer.plateau_factor=2", "trainer.plateau_factor=2; expected a number between 0 and 1"),
    ("trainer.early_stopping_patience=-1", "trainer.early_stopping_patience=-1; expected a number"),
    ("trainer.augment.enabled=true trainer.augment.max_shift=-2",
     "trainer.augment.max_shift=-2; expected a number of voxels"),
    ("trainer.resume=[a,b]", "trainer.resume=['a', 'b']; expected a run directory or null"),
    ("trainer.verbose=-1", "trainer.verbose=-1; expected 0 (silent), 1 or 2"),
    ("trainer.init_from=[a,b]", "trainer.init_from=['a', 'b']; expected a training run directory, "
     "a .keras file or null"),
    ("seed=-1", "seed=-1; expected a seed >= 0"),
    ("data.stream.prefetch=0", "data.stream.prefetch=0; expected a positive number"),
])
def test_bad_settings_are_train_errors(override, message):
    """One error, naming the key and what was expected."""
    with pytest.raises(TrainError, match=re.escape(message)):
        TrainSettings.from_cfg(compose_train(*override.split()))


def test_a_key_missing_from_the_yaml_is_not_filled_in():
    cfg = compose_train()
    OmegaConf.set_struct(cfg, False)
    del cfg.trainer["monitor"]
    with pytest.raises(TrainError, match="trainer.monitor is missing; expected one of val_loss"):
        TrainSettings.from_cfg(cfg)


def test_a_run_saved_before_precise_bn_and_baselines_resumes_without_them():
    cfg = compose_train()
    OmegaConf.set_struct(cfg, False)
    for key in ("precise_bn", "baselines", "cv_folds", "cv_fold", "init_from"):
        del cfg.trainer[key]
    settings = TrainSettings.from_cfg(cfg)
    assert settings.precise_bn is False and settings.baselines.enabled is False
    assert settings.cv_folds is None and settings.cv_fold is None
    assert settings.init_from is None


@pytest.mark.parametrize("typed, enabled", [("trainer.precise_bn=false", False),
                                            ("trainer.precise_bn=true", True),
                                            ("trainer.precise_bn.enabled=false", False)])
def test_precise_bn_is_a_switch_typed_either_way(typed, enabled):
    assert TrainSettings.from_cfg(compose_train(typed)).precise_bn is enabled


def test_precise_bn_of_another_kind_is_refused():
    with pytest.raises(TrainError, match=r"trainer\.precise_bn='often'; expected true, false"):
        TrainSettings.from_cfg(compose_train("trainer.precise_bn=often"))


def test_null_and_any_case_mean_what_they_did():
    settings = TrainSettings.from_cfg(compose_train(
        "trainer.min_lr=null", "trainer.distribution=DATA_PARALLEL", "trainer.precise_bn=null"))
    assert (settings.min_lr, settings.distribution, settings.precise_bn) == (0.0, "data_parallel",
                                                                             False)
    assert TrainSettings.from_cfg(compose_train("trainer.distribution=null")).distribution == "auto"

"""ModelSettings: each key of the ``model`` group read typed; a bad value is one ModelError naming
the key and what was expected; keys that runs made before them lack keep what those runs did."""
import re

import pytest
from omegaconf import OmegaConf

from brainage.errors import ModelError
from brainage.model import ModelSettings
from tests.builders import CONFIGS


def _model(preset="taylor2019", **values):
    cfg = OmegaConf.load(CONFIGS / "model" / f"{preset}.yaml")
    for key, value in values.items():
        cfg[key] = value
    return cfg


@pytest.mark.parametrize("key, value, message", [
    ("widths", [], "model.widths=[]; expected filters per block"),
    ("widths", [8, "x"], "model.widths=[8, 'x']; expected filters per block"),
    ("kernel_size", 0, "model.kernel_size=0; expected a size in voxels >= 1"),
    ("pool_size", 1.5, "model.pool_size=1.5; expected a size in voxels >= 1"),
    ("dense_units", "many", "model.dense_units='many'; expected a number of units >= 1 or null"),
    ("n_classes", -3, "model.n_classes=-3; expected a number of classes or null"),
    ("bn_momentum", 1.5, "model.bn_momentum=1.5; expected a number in [0, 1]"),
    ("bn_momentum", None, "model.bn_momentum is null; expected a number in [0, 1]"),
    ("name", 7, "model.name=7; expected a name"),
    ("architecture", None, "model.architecture is null; expected one of taylor2019, resnet3d, sfcn"),
    ("task", "survival", "model.task='survival'; expected one of classification, regression"),
    ("regression_loss", "huber", "model.regression_loss='huber'; expected one of mae, mse"),
])
def test_a_bad_value_is_one_error_naming_the_key(key, value, message):
    with pytest.raises(ModelError, match=re.escape(message)):
        ModelSettings.from_cfg(_model(**{key: value}))


def test_a_bad_dropout_names_the_key():
    with pytest.raises(ModelError, match="model.dropout='half'; expected a fraction or null"):
        ModelSettings.from_cfg(_model("sfcn", dropout="half"))


def test_a_run_saved_before_resnet3d_regression_and_sfcn_reads_as_it_ran():
    cfg = _model()
    for key in ("architecture", "task", "regression_loss"):
        del cfg[key]
    settings = ModelSettings.from_cfg(cfg)
    assert (settings.architecture, settings.task, settings.regression_loss, settings.dropout) == (
        "taylor2019", "classification", "mae", None)
    nulls = ModelSettings.from_cfg(_model(task=None, regression_loss=None))
    assert (nulls.task, nulls.regression_loss) == ("classification", "mae")


def test_the_settings_are_the_yaml_values():
    for name in ("taylor2019", "resnet3d", "sfcn"):
        cfg = OmegaConf.load(CONFIGS / "model" / f"{name}.yaml")
        settings = ModelSettings.from_cfg(cfg)
        assert settings.widths == tuple(cfg.widths) and settings.kernel_size == cfg.kernel_size
        assert (settings.dense_units, settings.n_classes, settings.bn_momentum) == (
            cfg.dense_units, cfg.n_classes, cfg.bn_momentum)
        assert settings.dropout == cfg.get("dropout") and settings.architecture == name

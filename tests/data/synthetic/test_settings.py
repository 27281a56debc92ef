"""The generator's settings and the cohort a data config asks for."""
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from brainage.data import synthetic as sy
from brainage.errors import DataError
from tests.data.synthetic.cohort_files import CONFIG


def test_config_block_holds_the_generator_defaults():
    block = OmegaConf.to_container(OmegaConf.load(CONFIG).synthetic)
    assert block.pop("workers") is None  # not a generator parameter: any count writes the same files
    assert sy.SyntheticSettings.from_dict(block) == sy.SyntheticSettings()


def test_unknown_setting_is_named(tmp_path, small_grid):
    with pytest.raises(DataError, match="'noise'"):
        sy.generate_cohort(tmp_path / "x", 2, grid=small_grid, noise=0.1)


def test_bad_parameter_value_is_a_data_error():
    with pytest.raises(DataError, match="age_distribution 'old'"):
        sy.SyntheticSettings(age_distribution="old")
    with pytest.raises(DataError, match="noise_sd must be >= 0"):
        sy.SyntheticSettings.from_dict({"noise_sd": -1})
    with pytest.raises(DataError, match="n_sites='two'"):
        sy.SyntheticSettings.from_dict({"n_sites": "two"})


def test_cohort_settings_from_the_data_config():
    cfg = OmegaConf.load(CONFIG)
    cfg.root = "/tmp/somewhere"
    cfg.synthetic.workers = 3
    request = sy.SyntheticCohortSettings.from_cfg(cfg)
    assert request.root == Path("/tmp/somewhere") and request.n_subjects == cfg.n_subjects
    assert request.generate is True and request.workers == 3
    assert request.parameters == sy.SyntheticSettings()


@pytest.mark.parametrize("key, value, message", [
    ("synthetic.workers", 0, r"data\.synthetic\.workers=0; expected null \(every available core\)"),
    ("synthetic.workers", "all", r"data\.synthetic\.workers='all'"),
    ("generate", "yes", r"data\.generate='yes'; expected true or false"),
    ("n_subjects", None, r"a synthetic cohort needs data\.n_subjects"),
])
def test_bad_cohort_setting_names_the_key(key, value, message):
    cfg = OmegaConf.load(CONFIG)
    OmegaConf.update(cfg, key, value)
    with pytest.raises(DataError, match=message):
        sy.SyntheticCohortSettings.from_cfg(cfg)


def test_missing_key_is_named():
    cfg = OmegaConf.to_container(OmegaConf.load(CONFIG), resolve=False)
    del cfg["generate"]
    with pytest.raises(DataError, match=r"data\.generate is missing; expected true or false"):
        sy.SyntheticCohortSettings.from_cfg(cfg)


def test_a_block_without_workers_uses_every_core():
    """Data configs saved by runs before the setting existed lack it."""
    cfg = {"root": "r", "n_subjects": 3, "generate": True, "synthetic": {"seed": 1}}
    request = sy.SyntheticCohortSettings.from_cfg(cfg)
    assert request.workers is None and request.parameters.seed == 1

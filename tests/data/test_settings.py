"""The data config read into DataSettings: every preset, named errors, saved run configs."""
import json

import pytest
from omegaconf import OmegaConf

from brainage.data.entries import _common_inputs
from brainage.data.formats import format_names
from brainage.data.settings import DataSettings
from brainage.errors import DataError
from tests.builders import CONFIGS, compose_data

PRESETS = sorted(p.stem for p in (CONFIGS / "data").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_reads(preset):
    settings = DataSettings.from_cfg(compose_data(preset, seed=5))
    assert settings.format in format_names() and settings.split_seed == 5
    assert settings.bin_edges == (10, 40, 70, 101) and settings.cache.workers is None
    assert (settings.synthetic is not None) == (preset in ("synthetic", "planted"))  # the generated ones


def test_synthetic_preset_is_typed():
    settings = DataSettings.from_cfg(compose_data("synthetic", "n_subjects=60", "synthetic.workers=2"))
    assert settings.crop_shape == (100, 124, 104) and settings.source_shape == (121, 145, 121)
    assert settings.split == (0.7, 0.15, 0.15) and settings.value_range == (0.0, 1.0)
    assert settings.synthetic.n_subjects == 60 and settings.synthetic.workers == 2
    assert str(settings.synthetic.root) == settings.root == "data/synthetic/pac2019_n60_seed0"


@pytest.mark.parametrize("override, message", [
    # every registered format is listed (tests/data/test_formats.py pins the whole message)
    ("format=nii", r"data\.format='nii'; expected (?=.*'nifti')(?=.*'npy')"),
    ("on_bad_subject=skip", r"data\.on_bad_subject='skip'; expected 'fail' or 'exclude'"),
    ("balance=oversample", r"data\.balance='oversample'; expected one of"),
    ("bin_edges=[10]", r"data\.bin_edges=\[10\.0\]; expected at least 3 increasing edges"),
    ("split=[0.5,0.5]", r"data\.split=\[0\.5, 0\.5\]; expected three fractions"),
    ("crop_shape=[100,124]", r"data\.crop_shape=\[100, 124\]; expected three voxel counts"),
    ("cache.dtype=float64", r"data\.cache\.dtype='float64'; expected one of \['float16', 'float32'\]"),
    ("cache.workers=0", r"data\.cache\.workers=0; expected null \(every available core\)"),
    ("value_tolerance=high", r"data\.value_tolerance='high'; expected a number"),
    ("participants=null", r"data\.participants is null; expected a CSV or TSV file"),
])
def test_bad_value_names_the_key(override, message):
    with pytest.raises(DataError, match=message):
        DataSettings.from_cfg(compose_data("pac2019", override))


def test_missing_key_and_unresolvable_interpolation_are_named():
    cfg = OmegaConf.to_container(compose_data("pac2019"), resolve=True)
    del cfg["value_range"]
    with pytest.raises(DataError, match=r"data\.value_range is missing; expected \[low, high\]"):
        DataSettings.from_cfg(cfg)
    detached = OmegaConf.create(OmegaConf.to_container(compose_data("pac2019"), resolve=False))
    with pytest.raises(DataError, match=r"data\.split_seed cannot be read"):
        DataSettings.from_cfg(detached)  # split_seed: ${seed} without the run's seed


def test_a_saved_run_config_reads_and_one_from_before_cache_workers_too(tmp_path):
    """explain re-reads a training run's .hydra/config.yaml and merges overrides into its data."""
    path = tmp_path / "config.yaml"
    OmegaConf.save(OmegaConf.create({"seed": 9, "data": compose_data("pac2019")}), path)
    saved = OmegaConf.load(path)
    merged = OmegaConf.merge(saved.data, {"cache": {"dir": "elsewhere"}})
    settings = DataSettings.from_cfg(merged)
    assert settings.split_seed == 9 and settings.cache.dir == "elsewhere"
    del saved.data.cache["workers"]
    assert DataSettings.from_cfg(saved.data).cache.workers is None


def test_cache_key_inputs_keep_the_form_earlier_versions_hashed():
    """Caches built before the settings object keep their key (no silent rebuild of data/cache)."""
    settings = DataSettings.from_cfg(compose_data("synthetic"))
    assert json.dumps(_common_inputs(settings), default=str) == \
        '[[0.0, 1.0], 0.05, "[121, 145, 121]", "[100, 124, 104]", "[10, 10, 4]", null]'
    affine = [[-1.5, 0, 0, 90], [0, 1.5, 0, -126], [0, 0, 1.5, -72], [0, 0, 0, 1]]
    settings = DataSettings.from_cfg(compose_data("npy", f"affine={affine}"))
    assert _common_inputs(settings)[5] == str(affine)

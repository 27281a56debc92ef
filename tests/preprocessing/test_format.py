"""data.format=preprocessed: the data stage finds the derivative from the raw root alone."""
import numpy as np
import pytest

from brainage.config_values import ConfigReader
from brainage.data.cohort import prepare_data
from brainage.data.derivative import derivative_dir
from brainage.data.formats import read_format
from brainage.errors import DataError
from brainage.preprocessing.pipeline import preprocess_cohort
from tests.builders import compose_data
from tests.preprocessing.fake_steps import fake_preprocess, write_raw_cohort

IDS = ["sub-a1", "sub-a2", "sub-a3", "sub-b1", "sub-bad", "sub-b3", "sub-b4", "sub-c1", "sub-c2", "sub-c3"]
AGES = [20, 25, 30, 45, 50, 55, 60, 75, 80, 85]


def data_config(root, tmp_path, *overrides):
    return compose_data("t1", f"root={root}", f"derivatives_dir={tmp_path / 'derivatives'}",
                        "source_shape=null", "crop_shape=null", "crop_offset=null", "balance=none",
                        "split=[0.34,0.33,0.33]", f"cache.dir={tmp_path / 'cache'}", "cache.dtype=float32",
                        *overrides)


@pytest.fixture
def preprocessed(tmp_path, settings_for):
    root = write_raw_cohort(tmp_path / "raw", IDS, AGES)
    work = tmp_path / "run"
    work.mkdir()
    preprocess_cohort(settings_for(root, "on_bad_subject=exclude"), work, preprocess=fake_preprocess)
    return root


def test_a_missing_derivative_says_which_command_makes_it(tmp_path):
    root = write_raw_cohort(tmp_path / "raw", IDS[:2])
    with pytest.raises(DataError, match=rf"no preprocessed grey matter of {root}: .* does not exist; make it "
                                        rf"with `make preprocess data.root={root} derivatives_dir="):
        prepare_data(data_config(root, tmp_path), progress=False)


def test_the_data_stage_reads_the_chosen_map_and_names_the_excluded_subject(preprocessed, tmp_path):
    prepared = prepare_data(data_config(preprocessed, tmp_path, "on_bad_subject=exclude"), progress=False)
    derivative = derivative_dir(preprocessed, tmp_path / "derivatives")
    assert sorted(prepared.table["subject_id"]) == sorted(set(IDS) - {"sub-bad"})
    assert prepared.volumes[0].shape == (7, 8, 9) and prepared.grid.source_shape == (7, 8, 9)
    assert all(p.startswith(str(derivative)) and "desc-modulated" in p for p in prepared.table["path"])
    (reason,) = prepared.exclusions["reason"]
    assert reason.startswith("sub-bad: no preprocessed grey matter") and "qc.tsv" in reason


def test_modulated_false_reads_the_unmodulated_map(preprocessed, tmp_path):
    cfg = data_config(preprocessed, tmp_path, "modulated=false")
    source = read_format(ConfigReader(cfg, "data"))
    located = source.locate("sub-a1", 0)
    volume, affine = source.open_volume(located)
    assert "desc-modulated" not in located.source and volume.max() <= 1.0 and np.allclose(affine[0, 0], -15)
    modulated = read_format(ConfigReader(data_config(preprocessed, tmp_path), "data"))
    assert modulated.cache_key([modulated.locate("sub-a1", 0)]) != source.cache_key([located])
    assert source.cache_key([located])[0] == "preprocessed"


def test_the_ixi_preset_reads_the_shared_root():
    cfg = compose_data("ixi")
    source = read_format(ConfigReader(cfg, "data"))
    assert source.root == "../shared/data/ixi" and source.modulated is True
    assert cfg.participants == "../shared/data/ixi/participants.tsv"
    assert list(cfg.source_shape) == [121, 145, 121] and list(cfg.crop_shape) == [100, 124, 104]

"""The preprocess config read into PreprocessSettings; StepSettings built from its own fields."""
import dataclasses

import pytest
from omegaconf import OmegaConf

from brainage.errors import DataError
from brainage.preprocessing.settings import PreprocessSettings
from brainage.preprocessing.steps import StepSettings
from tests.builders import CONFIGS, compose_stage


def test_the_yaml_reads_into_typed_settings(raw, settings_for):
    settings = settings_for(raw, "shard=1/3", "steps.syn_iterations=[10,5]", "steps.n4_shrink=2")
    assert settings.root == raw and settings.participants == raw / "participants.tsv"
    assert settings.shard == (1, 3) and settings.workers == 1 and settings.on_bad_subject == "fail"
    assert settings.steps.syn_iterations == (10, 5) and settings.steps.n4_shrink == 2
    assert isinstance(settings.steps, StepSettings)


def test_every_step_key_of_the_yaml_is_a_step_setting():
    steps = OmegaConf.load(CONFIGS / "preprocess.yaml").steps
    assert set(steps) <= {f.name for f in dataclasses.fields(StepSettings)}


def test_data_root_is_required_in_words():
    with pytest.raises(DataError, match=r"^data.root is required: the raw T1 folder .* make preprocess "
                                        r"data.root=\.\./shared/data/ixi$"):
        PreprocessSettings.from_cfg(compose_stage("preprocess"))


@pytest.mark.parametrize("override, message", [
    ("steps.n4_shrink=two", r"steps.n4_shrink='two'; expected int like 4"),
    ("+steps.warp=fast", r"steps.warp is not a step setting; expected one of .*n4_shrink, "),
    ("shard=3/3", r"shard='3/3'; expected i/n with 0 <= i < n"),
    ("on_bad_subject=skip", r"on_bad_subject='skip'; expected 'fail' or 'exclude'"),
    ("workers=0", r"workers=0; expected null \(every available core\)"),
])
def test_bad_values_name_their_key(raw, settings_for, override, message):
    with pytest.raises(DataError, match=message):
        settings_for(raw, override)


def test_a_missing_root_folder_is_named(tmp_path, settings_for):
    with pytest.raises(DataError, match="data.root=.*/nowhere: no such folder"):
        settings_for(tmp_path / "nowhere")

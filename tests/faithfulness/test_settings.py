"""ScoringSettings: every value of ``configs/evaluate.yaml`` read typed; a bad value is one
EvaluateError naming the key and what was expected, before any slow work."""
import dataclasses
import re

import pytest
from omegaconf import OmegaConf

from brainage.errors import EvaluateError
from brainage.faithfulness.settings import ScoringSettings
from tests.builders import CONFIGS, compose_stage


def test_settings_are_the_yaml_values():
    settings = ScoringSettings.from_cfg(compose_stage("evaluate"))
    yaml = OmegaConf.load(CONFIGS / "evaluate.yaml")
    assert settings.target_texts == [yaml.target] and settings.pairs == tuple(yaml.pairs)
    assert (settings.subjects_limit, settings.seed, settings.batch_size) == (
        yaml.subjects_limit, yaml.seed, yaml.batch_size)
    for block in ("perturbation", "randomisation", "localisation", "gradcam_layers", "class_maps",
                  "scorecard"):
        assert dataclasses.asdict(getattr(settings, block)) == OmegaConf.to_container(yaml[block]), block


@pytest.mark.parametrize("override, message", [
    ("perturbation.baseline=noise", "perturbation.baseline='noise'; expected one of ['zeros', "),
    ("perturbation.patch=0", "perturbation.patch=0; expected ≥ 1"),
    ("perturbation.blur_sigma=wide", "perturbation.blur_sigma='wide'; expected a number of voxels"),
    ("randomisation.granularity=unit", "randomisation.granularity='unit'; expected block or layer"),
    ("randomisation.max_voxels=0", "randomisation.max_voxels=0; expected a number of voxels or null"),
    ("randomisation.signed=maybe", "randomisation.signed='maybe'; expected true or false"),
    ("localisation.mask=box", "localisation.mask='box'; expected effect, regions or planted"),
    ("localisation.mask=regions", "localisation.mask=regions needs localisation.regions=[name, …]"),
    ("localisation.regions=Left_Hippocampus",
     "localisation.regions='Left_Hippocampus'; expected a list of region names or null"),
    ("localisation.relevance=signed", "localisation.relevance='signed'; expected positive or absolute"),
    ("gradcam_layers.layers=block1_conv_b",
     "gradcam_layers.layers='block1_conv_b'; expected a list of conv layer names or null"),
    ("class_maps.subjects=0", "class_maps.subjects=0; expected ≥ 1"),
    ("scorecard.randomisation_step=''", "scorecard.randomisation_step=''; expected a cascade step"),
    ("scorecard.min_loc_auc=high", "scorecard.min_loc_auc='high'; expected a number"),
    ("subjects_limit=0", "subjects_limit=0; expected a positive number or null (all)"),
    ("batch_size=0", "batch_size=0; expected ≥ 1"),
    ("random_map=often", "random_map='often'; expected true or false"),
    ("pairs=dtd:true", "pairs='dtd:true'; expected a list of method:target pairs"),
])
def test_a_bad_value_is_one_error_naming_the_key(override, message):
    with pytest.raises(EvaluateError, match=re.escape(message)):
        ScoringSettings.from_cfg(compose_stage("evaluate", override))


def test_a_missing_block_is_named():
    cfg = compose_stage("evaluate")
    OmegaConf.set_struct(cfg, False)
    del cfg["scorecard"]
    with pytest.raises(EvaluateError, match="scorecard is missing; expected a scorecard block"):
        ScoringSettings.from_cfg(cfg)

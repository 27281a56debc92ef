"""Every typed key of the infer, explain and distribute stages is read through the shared
:class:`~brainage.config_values.ConfigReader`: text given for a number (or a list of numbers), and
anything but true/false for a switch, is one error naming the key and what was expected — the
:class:`~brainage.errors.BrainageError` that ``run_stage`` prints as one line with exit status 2 —
never a Python traceback, nor a value silently taken (``bool('maybe')`` is true).

Only the settings are read (``<Settings>.from_cfg`` on a config Hydra composed): no TensorFlow, no
process of its own.
"""
import re

import pytest

from brainage.errors import BrainageError, DataError, ExplainError, InferError
from brainage.explaining.settings import ExplainSettings
from brainage.inference.settings import InferSettings
from brainage.training.stream_measure import StreamSettings
from tests.builders import compose_stage

STAGES = {
    "infer": (InferSettings, InferError),
    "explain": (ExplainSettings, ExplainError),
    "distribute": (StreamSettings, DataError),
}

# (stage, override, the one line its settings raise)
BAD_VALUES = [
    # infer
    ("infer", "alpha=abc", "alpha='abc'; expected a level between 0 and 1, e.g. 0.05"),
    ("infer", "alpha=true", "alpha=True; expected a level between 0 and 1, e.g. 0.05"),
    ("infer", "null_check.shuffles=abc", "null_check.shuffles='abc'; expected 0 (off) or a positive number"),
    ("infer", "null_check.shuffles=1.5", "null_check.shuffles=1.5; expected 0 (off) or a positive number"),
    ("infer", "null_check.shuffles=-1", "null_check.shuffles=-1; expected 0 (off) or a positive number"),
    ("infer", "seed=abc", "seed='abc'; expected a whole number, e.g. 0"),
    ("infer", "n_jobs=abc", "n_jobs='abc'; expected a whole number of permutation workers, e.g. 1"),
    ("infer", "voxelwise.gm_threshold=abc", "voxelwise.gm_threshold='abc'; expected a grey-matter probability, "
     "e.g. 0.1"),
    ("infer", "voxelwise.enabled=maybe", "voxelwise.enabled='maybe'; expected true or false"),
    ("infer", "voxelwise.tfce=maybe", "voxelwise.tfce='maybe'; expected true or false"),
    ("infer", "regions.atlas_threshold=abc", "regions.atlas_threshold='abc'; expected a probability in %, "
     "e.g. 25"),
    ("infer", "regions.merge_hemispheres=maybe", "regions.merge_hemispheres='maybe'; expected true or false"),
    ("infer", "regions.gm_adjust=1", "regions.gm_adjust=1; expected true or false"),
    # explain
    ("explain", "atlas.threshold=abc", "atlas.threshold='abc'; expected a probability in %, e.g. 25"),
    ("explain", "regions.top_k=abc", "regions.top_k='abc'; expected a whole number of regions, e.g. 10"),
    ("explain", "regions.merge_hemispheres=maybe", "regions.merge_hemispheres='maybe'; expected true or false"),
    ("explain", "group.correct_only=maybe", "group.correct_only='maybe'; expected true or false"),
    ("explain", "progress=maybe", "progress='maybe'; expected true or false"),
    ("explain", "progress=null", "progress=None; expected true or false"),
    ("explain", "batch_size=2.5", "batch_size=2.5; expected ≥ 1"),
    ("explain", "batch_size=true", "batch_size=True; expected ≥ 1"),
    ("explain", "display.low_percentile=abc", "display.low_percentile='abc'; expected a percentile in "
     "[0, 100), e.g. 95"),
    ("explain", "display.high_percentile=abc", "display.high_percentile='abc'; expected a percentile in "
     "(0, 100], e.g. 99.9"),
    ("explain", "display.brain_threshold=abc", "display.brain_threshold='abc'; expected a grey-matter "
     "probability in [0, 1), e.g. 0.1"),
    # distribute
    ("distribute", "n_volumes=abc", "n_volumes='abc'; expected a positive whole number"),
    ("distribute", "batch_size=abc", "batch_size='abc'; expected a positive whole number"),
    ("distribute", "workers=[a]", "workers=['a']; expected a positive whole number or a list of them, "
     "e.g. [1, 2, 4]"),
    ("distribute", "workers=abc", "workers='abc'; expected a positive whole number or a list of them, "
     "e.g. [1, 2, 4]"),
    ("distribute", "warm=maybe", "warm='maybe'; expected true or false"),
]


@pytest.mark.parametrize("stage, override, message", BAD_VALUES,
                         ids=[f"{stage}:{override}" for stage, override, _ in BAD_VALUES])
def test_a_malformed_value_is_one_line_naming_its_key(stage, override, message):
    settings, error = STAGES[stage]
    cfg = compose_stage(stage, override)
    with pytest.raises(error, match=f"^{re.escape(message)}$") as raised:
        settings.from_cfg(cfg)
    assert isinstance(raised.value, BrainageError)  # what run_stage prints as one line, exit 2
    assert "\n" not in str(raised.value)


# Well-formed values are read as before: YAML's defaults, and each kind of key given anew.
GOOD_VALUES = [
    ("infer", ["alpha=0.01", "null_check.shuffles=3", "seed=7", "n_jobs=-1", "voxelwise.gm_threshold=0.2",
               "voxelwise.tfce=true", "regions.atlas_threshold=50", "regions.merge_hemispheres=true",
               "regions.gm_adjust=false"],
     lambda s: (s.alpha, s.null_shuffles, s.seed, s.n_jobs, s.voxelwise.gm_threshold, s.voxelwise.tfce,
                s.regions.atlas_threshold, s.regions.merge_hemispheres, s.regions.gm_adjust)
     == (0.01, 3, 7, -1, 0.2, True, 50.0, True, False)),
    ("explain", ["atlas.threshold=10", "regions.top_k=3", "regions.merge_hemispheres=true",
                 "group.correct_only=false", "progress=false", "display.low_percentile=90",
                 "display.high_percentile=99", "display.brain_threshold=0.2"],
     lambda s: (s.atlas.threshold, s.top_k, s.atlas.merge_hemispheres, s.correct_only, s.progress,
                s.display.low_percentile, s.display.high_percentile, s.display.brain_threshold)
     == (10.0, 3, True, False, False, 90.0, 99.0, 0.2)),
    ("distribute", ["n_volumes=12", "batch_size=3", "workers=[1,3]", "warm=true"],
     lambda s: (s.n_volumes, s.batch_size, s.workers, s.warm) == (12, 3, (1, 3), True)),
    ("distribute", ["workers=2"], lambda s: s.workers == (2,)),
]


@pytest.mark.parametrize("stage, overrides, read", GOOD_VALUES,
                         ids=[f"{stage}:{len(overrides)}" for stage, overrides, _ in GOOD_VALUES])
def test_well_formed_values_are_read_as_before(stage, overrides, read):
    settings, _ = STAGES[stage]
    assert read(settings.from_cfg(compose_stage(stage, *overrides)))


@pytest.mark.parametrize("stage", STAGES)
def test_the_defaults_are_read(stage):
    STAGES[stage][0].from_cfg(compose_stage(stage))


def test_the_defaults_of_infer_and_explain_keep_their_types():
    infer = InferSettings.from_cfg(compose_stage("infer"))
    assert (infer.alpha, infer.seed, infer.n_jobs, infer.null_shuffles) == (0.05, 0, 1, 0)
    assert (infer.voxelwise.enabled, infer.voxelwise.tfce, infer.voxelwise.gm_threshold) == (True, False, 0.1)
    assert (infer.regions.atlas_threshold, infer.regions.merge_hemispheres, infer.regions.gm_adjust) \
        == (25.0, False, True)
    explain = ExplainSettings.from_cfg(compose_stage("explain"))
    assert (explain.atlas.threshold, explain.atlas.merge_hemispheres, explain.correct_only, explain.top_k,
            explain.progress) == (25.0, False, True, 10, True)
    assert (explain.display.low_percentile, explain.display.high_percentile,
            explain.display.brain_threshold) == (95.0, 99.9, 0.1)

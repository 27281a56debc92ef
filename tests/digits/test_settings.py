"""The digits config read into DigitsSettings: the YAML's values, bad values refused by key."""
import pytest

from brainage.digits.settings import DigitsSettings
from brainage.errors import BrainageError, ExplainError
from tests.builders import compose_stage


def settings(*overrides) -> DigitsSettings:
    return DigitsSettings.from_cfg(compose_stage("digits", *overrides))


def test_settings_hold_the_yaml_values():
    s = settings()
    assert (s.seed, s.size, s.test_fraction, s.limit) == (0, 28, 0.25, None)
    assert s.dense_hidden == (300, 100) and s.dense_fit.epochs == 20 and s.dense_fit.batch_size == 32
    assert s.cnn_filters == (32, 64, 64) and s.cnn_pool_after == 2 and s.cnn_dense_units == 64
    assert s.cnn_fit.learning_rate == 1e-3
    assert s.explainer == {"name": "dtd", "low": 0.0, "high": 1.0}
    assert s.examples == 6 and s.anti_subset is None


@pytest.mark.parametrize("override, named", [
    ("examples=0", "examples"),
    ("data.test_fraction=1.5", "data.test_fraction"),
    ("data.limit=0", "data.limit"),
    ("dense.hidden=[]", "dense.hidden"),
    ("cnn.epochs=0", "cnn.epochs"),
    ("dense.learning_rate=-1", "dense.learning_rate"),
    ("anti_subset=0", "anti_subset"),
])
def test_bad_values_raise_one_line_naming_the_key(override, named):
    with pytest.raises(BrainageError, match=rf"^digits: {named} must") as info:
        settings(override)
    assert "\n" not in str(info.value)


def test_a_cnn_deeper_than_the_digits_is_refused():
    with pytest.raises(BrainageError, match=r"leave no pixel of 8x8 digits"):
        settings("data.size=8")


def test_an_unknown_explainer_is_refused_before_training():
    with pytest.raises(ExplainError, match="explainer.name must be one of"):
        settings("explainer.name=dtdd")

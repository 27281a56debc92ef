"""Targets: which logit a map explains and the tag its file carries."""
import pytest

from brainage.errors import ExplainError
from brainage.explaining.targets import map_tags, primary_tag, target_specs


def test_target_specs_take_a_bare_true_back_to_the_true_class():
    assert target_specs("predicted") == ("predicted",)
    assert target_specs(["predicted", True, "all", 2]) == ("predicted", "true", "all", 2)
    for bad in (False, "foo", 1.5):
        with pytest.raises(ExplainError, match=f"target {bad!r}; expected predicted, true"):
            target_specs([bad])


def test_map_tags_and_the_primary_tag():
    assert map_tags("all", 3) == ["class0", "class1", "class2"]
    assert map_tags(2, 3) == ["class2"] and map_tags("true", 3) == ["true"]
    assert primary_tag("all", 1) == "class1"  # the predicted class's slice
    assert primary_tag("predicted", 1) == "predicted" and primary_tag(0, 2) == "class0"

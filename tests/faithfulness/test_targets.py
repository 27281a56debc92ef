"""Target modes and the (method, target) pairs of the scorecard."""
import numpy as np
import pytest

from brainage.errors import EvaluateError
from brainage.faithfulness.targets import parse_target_mode, scored_pairs


def test_target_modes_resolve_their_anchor_class():
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 1.0]])
    labels = np.array([2, 1])
    assert list(parse_target_mode("predicted").classes(logits, labels)) == [1, 0]
    assert list(parse_target_mode("true").classes(logits, labels)) == [2, 1]
    assert list(parse_target_mode(2).classes(logits, labels)) == [2, 2]
    contrast = parse_target_mode("predicted-vs-mean")
    assert (contrast.anchor, contrast.suffix) == ("predicted", "-vs-mean")
    assert list(contrast.classes(logits, labels)) == [1, 0]
    # Later explanations fix the class and keep the suffix, whatever the anchor was.
    assert contrast.fixed_class_target == "true-vs-mean"
    assert parse_target_mode("1-logodds").fixed_class_target == "true-logodds"
    assert parse_target_mode("true").fixed_class_target == "true"
    with pytest.raises(EvaluateError, match="class 5 out of range for a model with 3 outputs"):
        parse_target_mode(5).classes(logits, labels)


@pytest.mark.parametrize("bad", ["all", "all-vs-mean", "youngest", "", True, "predicted-"])
def test_unscorable_target_modes_are_refused(bad):
    with pytest.raises(EvaluateError, match="target="):
        parse_target_mode(bad)


def test_pairs_cross_methods_and_modes_then_add_the_extra_pairs_once():
    pairs = scored_pairs(["dtd", "gradcam"], ["predicted", 2],
                         ["dtd:predicted-vs-mean", "gradcam:2", "dtd:predicted-vs-mean"])
    assert [p.key for p in pairs] == [("dtd", "predicted"), ("gradcam", "predicted"),
                                      ("dtd", "2"), ("gradcam", "2"),
                                      ("dtd", "predicted-vs-mean")]
    with pytest.raises(EvaluateError, match="not among the selected explainers"):
        scored_pairs(["dtd"], ["predicted"], ["lrp_composite:true"])
    with pytest.raises(EvaluateError, match="is not method:target"):
        scored_pairs(["dtd"], ["predicted"], ["dtd"])
    with pytest.raises(EvaluateError, match="scores nothing"):
        scored_pairs(["dtd"], [], [])

"""Target specs: one string or a target plus a contrast, and the class arrays they become."""

import numpy as np
import pytest

from brainage.relevance.targets import PREDICTED, TargetSpec, parse_target, target_indices


@pytest.mark.parametrize(
    ("target", "contrast", "expected"),
    [
        ("predicted", None, TargetSpec("predicted", None)),
        ("predicted-vs-mean", None, TargetSpec("predicted", "mean")),
        ("true-vs-runnerup", None, TargetSpec("true", "runnerup")),
        ("all-logodds", None, TargetSpec("all", "logodds")),
        ("2-vs-0", None, TargetSpec(2, 0)),
        (3, "mean", TargetSpec(3, "mean")),
        ("predicted", 1, TargetSpec("predicted", 1)),
        ("predicted", "2", TargetSpec("predicted", 2)),
        (np.int64(1), None, TargetSpec(1, None)),
    ],
)
def test_one_string_or_target_plus_contrast(target, contrast, expected):
    spec = parse_target(target, contrast)
    assert spec == expected
    assert parse_target(spec.tag) == spec  # the tag round-trips


def test_tags_and_modes():
    assert [TargetSpec("predicted", c).tag for c in (None, 2, "runnerup", "mean", "logodds")] == [
        "predicted", "predicted-vs-2", "predicted-vs-runnerup", "predicted-vs-mean", "predicted-logodds"]
    assert [TargetSpec(0, c).mode for c in (None, 2, "runnerup", "mean", "logodds")] == [
        None, "class", "runnerup", "mean", "logodds"]
    assert TargetSpec("all", "mean").all_classes and not TargetSpec(1, "mean").all_classes


def test_default_contrast_applies_only_when_none_is_named():
    assert parse_target("predicted", default_contrast="mean") == TargetSpec("predicted", "mean")
    assert parse_target("predicted-logodds", default_contrast="mean").contrast == "logodds"
    assert parse_target("predicted", 2, default_contrast="mean").contrast == 2


@pytest.mark.parametrize(
    ("target", "contrast", "message"),
    [
        ("best", None, "target must be 'predicted'"),
        ("predicted-vs-", None, "target must be 'predicted'"),
        ("predicted-vs-mean", "logodds", "already names a contrast"),
        ("predicted", "median", "contrast must be a class index or one of"),
        ("predicted", True, "is a boolean"),
        (True, None, "is a boolean"),
        (1.5, None, "must be a string or an int"),
    ],
)
def test_bad_targets_are_clear_errors(target, contrast, message):
    with pytest.raises(ValueError, match=message):
        parse_target(target, contrast, who="dtd")


def test_class_arrays():
    classes, others = target_indices(TargetSpec("all", 2), None, batch=3, n_classes=4, who="dtd")
    np.testing.assert_array_equal(classes, np.arange(4)[:, None].repeat(3, axis=1))
    np.testing.assert_array_equal(others, np.full((4, 3), 2))
    classes, others = target_indices(TargetSpec("true", "runnerup"), [1, 0, 3], 3, 4, "dtd")
    np.testing.assert_array_equal(classes, [[1, 0, 3]])
    np.testing.assert_array_equal(others, [[PREDICTED] * 3])
    classes, _ = target_indices(TargetSpec("predicted", "mean"), None, 2, 4, "dtd")
    np.testing.assert_array_equal(classes, [[PREDICTED, PREDICTED]])


def test_contrasts_on_one_output_and_out_of_range_classes_are_refused():
    with pytest.raises(ValueError, match=r"dtd: target 'predicted-vs-mean' contrasts classes, but the model "
                                         r"has 1 output \(a regression\)"):
        target_indices(TargetSpec("predicted", "mean"), None, 2, 1, "dtd")
    classes, _ = target_indices(TargetSpec("predicted"), None, 2, 1, "dtd")
    np.testing.assert_array_equal(classes, [[PREDICTED, PREDICTED]])
    with pytest.raises(ValueError, match="class 4 out of range for a model with 4 outputs"):
        target_indices(TargetSpec("predicted", 4), None, 2, 4, "dtd")
    with pytest.raises(ValueError, match="needs labels"):
        target_indices(TargetSpec("true", "mean"), None, 2, 4, "dtd")

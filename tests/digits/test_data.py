"""The digits: upsampled to 28 x 28 in [0, 1]; the stratified split and its refusal."""
import numpy as np
import pytest

from brainage.digits.data import load_digits_upsampled, source_note, split_digits
from brainage.errors import BrainageError


def test_digits_are_upsampled_to_28_in_unit_range():
    x, y = load_digits_upsampled(28, limit=50)
    assert x.shape == (50, 28, 28, 1) and x.dtype == np.float32 and y.shape == (50,)
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
    assert set(np.unique(y)) <= set(range(10))


def test_split_is_stratified_by_digit():
    x, y = load_digits_upsampled(12, limit=400)
    split = split_digits(x, y, 0.25, seed=0)
    assert len(split.y_test) == 100 and len(split.y_train) == 300
    assert set(split.y_test) == set(split.y_train) == set(range(10))
    assert split.x_test.shape == (100, 12, 12, 1)


def test_too_few_digits_to_stratify_raise_a_brainage_error():
    x, y = load_digits_upsampled(8, limit=12)
    with pytest.raises(BrainageError, match="cannot split 12 digits .* raise data.limit"):
        split_digits(x, y, 0.25, seed=0)


def test_source_note_names_the_size():
    assert "upsampled to 28x28" in source_note(28)

import numpy as np
import pytest

from brainage.data.cache import RowSubset
from brainage.data.stream import VolumeSequence, shift_volume


@pytest.fixture
def volumes(rng):
    return rng.uniform(size=(11, 7, 8, 9)).astype(np.float16)


def test_batches_cover_the_rows_in_order_without_shuffle(volumes):
    idx = np.array([9, 2, 4, 0, 7])
    labels = np.arange(11) % 3
    seq = VolumeSequence(volumes, idx, labels, batch_size=2)
    assert len(seq) == 3
    xs, ys = zip(*(seq[i] for i in range(len(seq))))
    x = np.concatenate(xs)
    assert x.shape == (5, 7, 8, 9, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x[..., 0], volumes[idx].astype(np.float32))
    np.testing.assert_array_equal(np.concatenate(ys), labels[idx])


def test_shuffle_is_a_function_of_seed_and_epoch(volumes):
    idx = np.arange(11)
    a = VolumeSequence(volumes, idx, idx, batch_size=11, shuffle=True, seed=3)
    b = VolumeSequence(volumes, idx, idx, batch_size=11, shuffle=True, seed=3)
    first = a[0][1]
    assert sorted(first) == list(range(11)) and list(first) != list(range(11))
    np.testing.assert_array_equal(first, b[0][1])
    a.on_epoch_end()
    assert list(a[0][1]) != list(first)
    b.set_epoch(1)
    np.testing.assert_array_equal(a[0][1], b[0][1])


def test_shift_moves_content_and_fills_zeros(rng):
    vol = rng.uniform(size=(7, 8, 9)).astype(np.float32)
    out = shift_volume(vol, (1, -2, 0))
    np.testing.assert_array_equal(out[1:, :-2, :], vol[:-1, 2:, :])
    assert not out[0].any() and not out[:, -2:].any()


def test_augmented_batches_are_reproducible(volumes):
    idx = np.arange(11)
    a = VolumeSequence(volumes, idx, idx, batch_size=4, seed=1, max_shift=2)[1][0]
    b = VolumeSequence(volumes, idx, idx, batch_size=4, seed=1, max_shift=2)[1][0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[..., 0], volumes[4:8].astype(np.float32))


def test_row_subset_reads_the_selected_rows(volumes):
    sub = RowSubset(volumes, [5, 1, 8])
    assert sub.shape == (3, 7, 8, 9) and len(sub) == 3
    np.testing.assert_array_equal(sub[0], volumes[5])
    np.testing.assert_array_equal(sub[np.array([2, 0])], volumes[[8, 5]])
    np.testing.assert_array_equal(sub[1:], volumes[[1, 8]])
    np.testing.assert_array_equal(np.asarray(sub), volumes[[5, 1, 8]])
    np.testing.assert_array_equal(sub[0, 2], volumes[5, 2])


def test_empty_sequence_is_an_error(volumes):
    with pytest.raises(ValueError, match="at least one volume"):
        VolumeSequence(volumes, [], None)

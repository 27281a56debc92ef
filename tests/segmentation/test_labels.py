"""The structure's box and each subject's labels, warped with the subject's own deformation."""
import numpy as np
import pytest

from brainage.data.synthetic import build_anatomy
from brainage.data.synthetic.deformation import cohort_draws, warp_to_subject
from brainage.errors import SegmentationError
from brainage.neuro.grid import Grid
from brainage.segmentation.labels import atlas_labels, warped_labels
from brainage.segmentation.region import box_within_crop, structure_box, structure_mask
from brainage.segmentation.scores import dice

from .conftest import AFFINE, CROP, SHAPE


@pytest.fixture(scope="module")
def right_hippocampus():
    grid = Grid.build(AFFINE, SHAPE)
    return grid, structure_mask("neuromorphometrics", ["Right_Hippocampus"], grid)


def test_the_box_is_centred_on_the_structure_and_holds_it(right_hippocampus):
    grid, mask = right_hippocampus
    box = structure_box(mask, grid, CROP)
    assert box.crop_shape == tuple(CROP) and box.crop(mask).sum() == mask.sum()
    idx = np.argwhere(box.crop(mask))
    margins = np.concatenate([idx.min(0), np.asarray(CROP) - 1 - idx.max(0)])
    assert margins.min() >= 0 and np.abs(idx.min(0) - (np.asarray(CROP) - 1 - idx.max(0))).max() <= 1
    inner = box_within_crop(box, Grid.build(AFFINE, SHAPE, (14, 18, 16), (1, 1, 1)))
    assert [s.start for s in inner] == [o - 1 for o in box.crop_offset]


def test_a_box_too_small_or_outside_the_crop_and_an_unknown_label_are_named(right_hippocampus):
    grid, mask = right_hippocampus
    with pytest.raises(SegmentationError, match=r"crop.shape=\[6, 14, 14\] cuts off part of the structure"):
        structure_box(mask, grid, [6, 14, 14])
    with pytest.raises(SegmentationError, match="leaves the cohort's crop"):
        structure_box(mask, Grid.build(AFFINE, SHAPE, (10, 10, 10), (0, 0, 0)), CROP)
    with pytest.raises(SegmentationError, match=r"\['Right_Hipocampus'\] are not in atlas"):
        structure_mask("neuromorphometrics", ["Right_Hipocampus"], grid)


def test_labels_follow_each_subjects_deformation(hippocampus_cohort, right_hippocampus):
    grid, mask = right_hippocampus
    box = structure_box(mask, grid, CROP)
    ids = ["sub-0001", "sub-0005", "sub-0009"]
    labels = warped_labels(mask, box, ids, hippocampus_cohort)
    assert labels.shape == (3, *CROP) and labels.dtype == np.uint8
    draws = cohort_draws(hippocampus_cohort)
    anatomy = build_anatomy(draws.grid)
    for sid, label in zip(ids, labels):
        whole = warp_to_subject(mask.astype(np.float32), anatomy, draws.draws[sid], draws.settings)
        np.testing.assert_array_equal(label, box.crop(whole) >= 0.5)
    prior = atlas_labels(mask, box, 3)
    overlap = dice(labels, prior)
    assert np.all(overlap > 0.6) and np.all(overlap < 1.0)  # moved a little, not elsewhere
    assert not np.array_equal(labels[0], labels[1])


def test_a_cohort_on_another_grid_or_without_a_subject_is_refused(hippocampus_cohort, right_hippocampus):
    grid, mask = right_hippocampus
    box = structure_box(mask, grid, CROP)
    with pytest.raises(SegmentationError, match="does not redraw subject"):
        warped_labels(mask, box, ["sub-0099"], hippocampus_cohort)
    other = Grid.build(AFFINE, (16, 20, 19), CROP, box.crop_offset)
    with pytest.raises(SegmentationError, match="generated on the grid"):
        warped_labels(mask, other, ["sub-0001"], hippocampus_cohort)

"""Relevance maps as NIfTI files: world space, the header a viewer reads, files others can read."""
import os
import stat

import nibabel as nib
import numpy as np
import pytest

from brainage.neuro.grid import Grid
from brainage.neuro.nifti import (
    DESCRIP_BYTES,
    NOT_SCORED,
    DisplayRange,
    DisplayRule,
    MapLabel,
    display_range,
    reference_header,
    relevance_image,
    save_atomic,
)
from tests.builders import AFFINE, SHAPE, write_gm

RULE = DisplayRule(low_percentile=95.0, high_percentile=99.9, brain_threshold=0.1)


@pytest.fixture
def grid():
    return Grid.build(AFFINE, SHAPE, (5, 6, 7), (1, 2, 0))


@pytest.fixture
def umask():
    """Set the process umask for one test; the old one comes back after it."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def brain_and_map(rng, signed: bool):
    """A 20 x 22 x 19 'head': GM in a ball, and a map with the zB rule's faint positive
    background (every voxel of the box > 0) plus strong relevance on some brain voxels."""
    ijk = np.indices((20, 22, 19)).transpose(1, 2, 3, 0)
    gm = np.clip(1.2 - np.linalg.norm((ijk - [10, 11, 9]) / [7, 8, 6], axis=-1), 0, 1)
    relevance = rng.uniform(1e-8, 5e-8, gm.shape)  # background: tiny but positive
    brain = gm > RULE.brain_threshold
    relevance[brain] += rng.gamma(1.0, 1e-7, brain.sum())
    hot = brain & (rng.uniform(size=gm.shape) < 0.1)
    relevance[hot] += rng.uniform(1e-6, 6e-6, hot.sum())
    if signed:
        relevance[brain] *= rng.choice([-1.0, 1.0], brain.sum())
    return gm, relevance


def test_map_voxels_lie_over_the_input_voxels_they_came_from(tmp_path, grid, rng):
    src = write_gm(tmp_path / "sub_gm.nii.gz", rng.uniform(size=SHAPE))
    src_img = nib.load(src)
    cropped = grid.crop(src_img.get_fdata())  # what the network saw
    relevance = cropped * 3.0  # any map computed on the crop
    img = relevance_image(relevance, grid, reference_header(src, grid), "dtd test")
    saved = nib.load(save_atomic(img, tmp_path / "maps" / "m.nii.gz"))
    assert saved.shape == SHAPE
    data = saved.get_fdata()
    for ijk_crop in rng.integers(0, [5, 6, 7], size=(20, 3)):
        ijk_src = ijk_crop + np.array(grid.crop_offset)
        # the map voxel holding this relevance is at the source voxel's index ...
        assert data[tuple(ijk_src)] == pytest.approx(relevance[tuple(ijk_crop)])
        # ... and both are at the same millimetres in world space
        world_map = saved.affine @ np.append(ijk_src, 1)
        world_in = src_img.affine @ np.append(ijk_src, 1)
        np.testing.assert_allclose(world_map, world_in)
        np.testing.assert_allclose(grid.cropped_affine @ np.append(ijk_crop, 1), world_in)
    outside = np.ones(SHAPE, bool)
    outside[grid.slices] = False
    assert not data[outside].any()


def test_header_fields_for_viewers(tmp_path, grid, rng):
    src = write_gm(tmp_path / "s.nii.gz", rng.uniform(size=SHAPE))
    signed = rng.normal(size=(5, 6, 7))
    brain = np.ones(signed.shape, bool)
    label = MapLabel("lrp", "predicted:class2", source="2026-01-01_00-00-00")
    img = relevance_image(signed, grid, reference_header(src), label,
                          display_range(signed, brain, RULE))
    hdr = nib.load(save_atomic(img, tmp_path / "m.nii.gz")).header
    assert hdr.get_data_dtype() == np.float32
    assert hdr["sform_code"] == 4 and hdr["qform_code"] == 4
    np.testing.assert_allclose(hdr.get_sform(), AFFINE)
    # the qform cannot hold a shear: it must be the input image's own qform
    np.testing.assert_allclose(hdr.get_qform(), nib.load(src).header.get_qform(), atol=1e-5)
    # signed maps too: cal_min is a threshold on |R|, not -cal_max (which would show everything)
    assert hdr["cal_min"] == pytest.approx(np.percentile(np.abs(signed), 95), rel=1e-6)
    assert hdr["cal_max"] == pytest.approx(np.percentile(np.abs(signed), 99.9), rel=1e-6)
    assert 0 < hdr["cal_min"] < hdr["cal_max"]
    assert hdr.get_intent() == ("estimate", (), "lrp")
    assert hdr["descrip"].item().decode() == (f"lrp target=predicted:class2 checks={NOT_SCORED} "
                                              "run=2026-01-01_00-00-00")
    pos = relevance_image(np.abs(signed), grid, reference_header(src), "dtd",
                          display_range(np.abs(signed), brain, RULE)).header
    assert 0 < pos["cal_min"] < pos["cal_max"]
    bare = relevance_image(signed, grid, reference_header(src), "no range").header
    assert bare["cal_min"] == bare["cal_max"] == 0 and bare.get_intent()[0] == "estimate"


def test_a_map_on_another_grid_is_refused(tmp_path, grid, rng):
    src = write_gm(tmp_path / "s.nii.gz", rng.uniform(size=SHAPE), np.eye(4))
    with pytest.raises(ValueError, match="is not the cohort grid"):
        relevance_image(np.zeros((5, 6, 7)), grid, reference_header(src))


@pytest.mark.parametrize("signed", [False, True])
def test_the_range_shows_the_strongest_relevance_over_the_brain(rng, signed):
    gm, relevance = brain_and_map(rng, signed)
    brain = RULE.brain_mask(gm)
    display = display_range(relevance, brain, RULE)
    assert display.signed == signed
    shown = display.shown(relevance)
    assert (shown & ~brain).sum() <= 0.05 * shown.sum()
    assert (shown & brain).sum() >= 0.01 * brain.sum()
    # ... where the range of the old header (0 to the 99.5th percentile) showed the whole box
    old_min = -np.percentile(np.abs(relevance), 99.5) if signed else 0.0
    assert (relevance > old_min).mean() > 0.99


def test_a_range_needs_brain_relevance_and_a_top_above_the_threshold():
    brain = np.zeros((3, 4, 5), bool)
    brain[1] = True
    empty = display_range(np.ones((3, 4, 5)) * ~brain, brain, RULE)
    assert (empty.cal_min, empty.cal_max) == (0.0, 0.0) and not empty.shown(np.ones(3)).any()
    flat = display_range(np.full((3, 4, 5), 0.25, np.float32), brain, RULE)
    assert flat.cal_min == pytest.approx(0.25)
    assert np.float32(flat.cal_max) > np.float32(flat.cal_min)  # viewers need max > min
    with pytest.raises(ValueError, match="differ in shape"):
        display_range(np.ones((3, 4, 5)), brain[0], RULE)


@pytest.mark.parametrize("low, high, threshold, message", [
    (99.0, 95.0, 0.1, "low < high"), (-1.0, 95.0, 0.1, "low < high"),
    (95.0, 101.0, 0.1, "low < high"), (95.0, 99.0, 1.0, "brain_threshold=1.0")])
def test_a_display_rule_refuses_nonsense(low, high, threshold, message):
    with pytest.raises(ValueError, match=message):
        DisplayRule(low, high, threshold)


def test_a_range_is_read_back_from_a_saved_map(tmp_path, grid, rng):
    volume = rng.normal(size=(5, 6, 7))
    display = display_range(volume, np.ones(volume.shape, bool), RULE)
    saved = nib.load(save_atomic(relevance_image(volume, grid, None, "x", display),
                                 tmp_path / "m.nii.gz"))
    back = DisplayRange.of(saved)
    assert back.signed and back.cal_min == pytest.approx(display.cal_min)
    assert back.cal_max == pytest.approx(display.cal_max)


def test_descrip_keeps_whole_fields_within_the_header():
    label = MapLabel("gradient_x_input", "predicted:class2", what="bin0 mean share n=12",
                     source="2026-01-01_00-00-00")
    text = label.descrip()
    assert len(text.encode()) <= DESCRIP_BYTES
    assert text == "gradient_x_input target=predicted:class2 bin0 mean share n=12 checks=not scored"
    assert MapLabel("dtd", "true", checks="passed 4/4").descrip() == "dtd target=true checks=passed 4/4"
    assert label.intent_name() == "gradient_x_inpu"  # niftilib keeps 15 characters


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_saved_maps_respect_the_umask_like_any_other_file(tmp_path, grid, umask, mask, mode):
    umask(mask)
    path = save_atomic(relevance_image(np.ones((5, 6, 7)), grid), tmp_path / "maps" / "m.nii.gz")
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == mode
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.nii.gz"]  # no temporary left
    assert nib.load(path).shape == SHAPE


def test_a_failed_save_leaves_nothing_behind(tmp_path, grid, monkeypatch):
    def half_write(img, filename):
        with open(filename, "wb") as f:
            f.write(b"half a header")
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", half_write)
    with pytest.raises(OSError, match="disk full"):
        save_atomic(relevance_image(np.ones((5, 6, 7)), grid), tmp_path / "m.nii.gz")
    assert list(tmp_path.iterdir()) == []

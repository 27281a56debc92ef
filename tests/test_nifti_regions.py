import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.neuro.grid import Grid
from brainage.neuro.nifti import reference_header, relevance_image, save_atomic
from brainage.neuro.regions import OUTSIDE, hemisphere_free, region_lookup, region_stats, summarise_regions
from tests.builders import AFFINE, SHAPE, write_gm


@pytest.fixture
def grid():
    return Grid.build(AFFINE, SHAPE, (5, 6, 7), (1, 2, 0))


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
    hdr = relevance_image(signed, grid, reference_header(src), "lrp target=predicted").header
    assert hdr.get_data_dtype() == np.float32
    assert hdr["sform_code"] == 4 and hdr["qform_code"] == 4
    np.testing.assert_allclose(hdr.get_sform(), AFFINE)
    # the qform cannot hold a shear: it must be the input image's own qform
    np.testing.assert_allclose(hdr.get_qform(), nib.load(src).header.get_qform(), atol=1e-5)
    assert hdr["cal_max"] > 0 and hdr["cal_min"] == -hdr["cal_max"]
    assert hdr.get_intent()[0] == "estimate"
    assert hdr["descrip"].item().decode() == "lrp target=predicted"
    pos = relevance_image(np.abs(signed), grid, reference_header(src)).header
    assert pos["cal_min"] == 0 and pos["cal_max"] > 0


def test_a_map_on_another_grid_is_refused(tmp_path, grid, rng):
    src = write_gm(tmp_path / "s.nii.gz", rng.uniform(size=SHAPE), np.eye(4))
    with pytest.raises(ValueError, match="is not the cohort grid"):
        relevance_image(np.zeros((5, 6, 7)), grid, reference_header(src))


def test_region_table_against_a_hand_made_atlas(rng):
    labels = np.zeros((4, 5, 6), dtype=np.int32)
    labels[:2] = 3          # "Left_A": 60 voxels
    labels[2, :2] = 7       # "Right_A": 12 voxels
    labels[3, 0, 0] = 9     # label not in the table: counts as outside
    table = pd.DataFrame({"index": [3, 7, 11], "name": ["Left_A", "Right_A", "B"]})
    vol = rng.normal(size=labels.shape)
    ids, names = region_lookup(labels, table)
    stats = region_stats(vol, ids, names, voxel_ml=0.5).set_index("region")
    assert names == [OUTSIDE, "Left_A", "Right_A", "B"]
    assert stats.loc["Left_A", "sum"] == pytest.approx(vol[:2].sum())
    assert stats.loc["Left_A", "n_voxels"] == 60
    assert stats.loc["Right_A", "mean"] == pytest.approx(vol[2, :2].mean())
    assert stats.loc["Right_A", "density"] == pytest.approx(vol[2, :2].sum() / (12 * 0.5))
    assert stats.loc["B", "n_voxels"] == 0 and stats.loc["B", "sum"] == 0
    outside = np.ones(labels.shape, bool)
    outside[:2] = False
    outside[2, :2] = False
    assert stats.loc[OUTSIDE, "sum"] == pytest.approx(vol[outside].sum())
    assert stats["share"].sum() == pytest.approx(1.0)
    merged_ids, merged = region_lookup(labels, table, merge_hemispheres=True)
    m = region_stats(vol, merged_ids, merged, 0.5).set_index("region")
    assert merged == [OUTSIDE, "A", "B"]
    assert m.loc["A", "sum"] == pytest.approx(vol[:2].sum() + vol[2, :2].sum())


@pytest.mark.parametrize("name, expected", [("Left_Hippocampus", "Hippocampus"),
                                            ("Precentral_R", "Precentral"),
                                            ("Right Cerebral Cortex", "Cerebral Cortex"),
                                            ("Vermis_1_2", "Vermis_1_2")])
def test_hemisphere_names(name, expected):
    assert hemisphere_free(name) == expected


def test_summary_means_sds_and_ranks():
    rows = []
    for sid, b, shares in [("a", 0, [0.1, 0.6, 0.3]), ("b", 0, [0.1, 0.4, 0.5]), ("c", 1, [0, 0.2, 0.8])]:
        for region, share in zip([OUTSIDE, "X", "Y"], shares):
            rows.append({"subject_id": sid, "bin": b, "method": "dtd", "region": region,
                         "sum": share * 10, "density": share, "share": share})
    s = summarise_regions(pd.DataFrame(rows)).set_index(["bin", "region"])
    assert s.loc[(0, "X"), "mean_share"] == pytest.approx(0.5)
    assert s.loc[(0, "X"), "sd_share"] == pytest.approx(np.std([0.6, 0.4], ddof=1))
    assert s.loc[(0, "X"), "rank"] == 1 and s.loc[(0, "Y"), "rank"] == 2
    assert s.loc[(1, "Y"), "rank"] == 1
    assert pd.isna(s.loc[(0, OUTSIDE), "rank"])

"""Relevance per atlas region (the NIfTI map tests are in tests/neuro/test_nifti.py)."""
import numpy as np
import pandas as pd
import pytest

from brainage.neuro.regions import OUTSIDE, hemisphere_free, region_lookup, region_stats, summarise_regions


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

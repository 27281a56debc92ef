"""Localisation scores against a known mask: perfect, uniform, inverted and signed maps."""
import numpy as np
import pytest

from brainage import faithfulness as ff


def test_localisation_perfect_uniform_and_inverted_maps():
    shape = (6, 7, 8)
    brain = np.zeros(shape, bool)
    brain[1:5, 1:6, 1:7] = True
    mask = np.zeros(shape, bool)
    mask[1:3, 1:6, 1:7] = True
    share = mask[brain].mean()
    perfect = mask * 2.0
    perfect[~brain] = 7.0  # relevance outside the brain must not count
    maps = np.stack([perfect, np.ones(shape), (brain & ~mask) * 1.0, mask * -1.0])
    out = ff.localisation_scores(maps[..., None], mask, brain, max_voxels=None)
    assert out["mask_share"].iloc[0] == pytest.approx(share)
    assert out["mass_ratio"].iloc[0] == pytest.approx(1 / share)
    assert out["auc"].iloc[0] == pytest.approx(1.0)
    assert out["brain_share"].iloc[0] == pytest.approx(perfect[brain].sum() / perfect.sum())
    assert out["mass_ratio"].iloc[1] == pytest.approx(1.0) and out["auc"].iloc[1] == pytest.approx(0.5)
    assert out["mass_ratio"].iloc[2] == pytest.approx(0.0) and out["auc"].iloc[2] == pytest.approx(0.0)
    assert np.isnan(out["mass_ratio"].iloc[3])  # no positive relevance to share
    absolute = ff.localisation_scores(maps[3:], mask, brain, relevance="absolute")
    assert absolute["mass_ratio"].iloc[0] == pytest.approx(1 / share)
    sub = ff.localisation_scores(maps[:1], mask, brain, max_voxels=50)
    assert sub["auc"].iloc[0] == pytest.approx(1.0)

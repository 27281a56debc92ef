"""The infer stage's maps under their header range: what a viewer shows, and files others can read."""
import stat

import nibabel as nib
import numpy as np
import pytest

from brainage.inference.stat_maps import write_voxel_maps
from brainage.inference.voxel_tests import VoxelResult
from brainage.neuro.nifti import DisplayRange
from tests.builders import AFFINE, SHAPE

ALPHA = 0.05


def mask_and_reference():
    mask = np.zeros(SHAPE, bool)
    mask[1:6, 1:7, 1:8] = True
    return mask, nib.Nifti1Image(mask.astype(np.float32), AFFINE)


def result(rng, n: int, significant: int) -> VoxelResult:
    """t over ``n`` mask voxels, the first ``significant`` of them above the FWE threshold 4."""
    t = rng.normal(size=n)
    t[:significant] = rng.choice([-1.0, 1.0], significant) * rng.uniform(5, 8, significant)
    logp = np.where(np.abs(t) > 4.0, 3.0, rng.uniform(0, 1.0, n))
    tfce = np.abs(t) * 10 + rng.uniform(0, 1, n)
    return VoxelResult(t=t, logp_fwe=logp, t_threshold=4.0, df=20, tfce=tfce,
                       logp_fwe_tfce=logp.copy())


@pytest.mark.parametrize("significant", [0, 12])
def test_a_viewer_shows_the_significant_voxels_or_the_strongest_five_percent(tmp_path, rng,
                                                                             significant):
    mask, reference = mask_and_reference()
    paths = write_voxel_maps(result(rng, int(mask.sum()), significant), mask, reference, tmp_path,
                             "dtd_bin2_vs_bin0", ALPHA)
    for kind, path in paths.items():
        img = nib.load(path)
        data = np.asarray(img.dataobj)
        display = DisplayRange.of(img)
        assert np.float32(display.cal_max) > np.float32(display.cal_min) > 0, kind
        shown = display.shown(data)
        assert not (shown & ~mask).any(), kind  # nothing outside the analysis mask
        if kind.startswith("logp"):  # a significance map shows exactly the significant voxels
            assert shown.sum() == significant, kind
        elif significant:
            assert shown.sum() == significant, kind
        else:  # nothing significant: the strongest 5 % of the mask
            assert shown.sum() == pytest.approx(0.05 * mask.sum(), abs=1), kind
            assert b"none FWE-significant" in img.header["descrip"].tobytes()


def test_infer_maps_respect_the_umask(tmp_path, rng):
    import os

    previous = os.umask(0o002)
    try:
        mask, reference = mask_and_reference()
        paths = write_voxel_maps(result(rng, int(mask.sum()), 3), mask, reference, tmp_path,
                                 "m", ALPHA)
    finally:
        os.umask(previous)
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths.values()} == {0o664}

"""The ground truth written with a cohort is the effect the generator applied."""
import nibabel as nib
import numpy as np
import pandas as pd

from brainage.data import synthetic as sy
from tests.data.synthetic.cohort_files import QUIET, read_volumes


def test_ground_truth_is_the_applied_effect(tmp_path, small_grid):
    root = sy.generate_cohort(tmp_path / "quiet", 3, seed=0, ages=[20.0, 85.0, 52.5], grid=small_grid,
                              n_jobs=1, progress=False, **QUIET)
    table, volumes = read_volumes(root)
    effect = np.asarray(nib.load(str(root / "ground_truth" / "age_effect.nii.gz")).dataobj)
    np.testing.assert_allclose(volumes[1] - volumes[0], effect, atol=1e-6)
    settings = sy.SyntheticSettings(**QUIET)
    expected = sy.expected_gm(sy.build_anatomy(small_grid), 52.5, settings)
    np.testing.assert_allclose(volumes[2], expected, atol=1e-6)
    # An ageing brain loses grey matter; gains are only where enlarging ventricles push tissue outward.
    assert effect.min() < -0.1 and (effect < -0.02).sum() > 10 * (effect > 0.02).sum()

    regions = pd.read_csv(root / "ground_truth" / "regions.csv")
    assert {"name", "index", "factor", "relative_loss_20_85", "mean_change_20_85", "n_voxels"} <= set(regions)
    calcarine = regions[regions["name"].str.contains("_Calc_")]
    hippocampus = regions[regions["name"].str.contains("Hippocampus")]
    assert (calcarine["factor"] == 0).all() and (calcarine["role"] == "control").all()
    assert (hippocampus["n_voxels"] > 0).all()
    assert (hippocampus["mean_change_20_85"] < 4 * calcarine["mean_change_20_85"].mean()).all()
    span = sy.CURVES["accelerating"].loss(85) - sy.CURVES["accelerating"].loss(20)
    np.testing.assert_allclose(hippocampus["relative_loss_20_85"], hippocampus["factor"] * span, rtol=1e-5)

"""The ageing model: its curves, and the regional pattern and mean curve of a generated cohort."""
import numpy as np
import pandas as pd
import pytest

from brainage.data import synthetic as sy
from tests.data.synthetic.cohort_files import read_volumes, region_means


def test_age_curve_is_the_integral_of_its_rate():
    ages = np.linspace(18, 90, 37)
    for curve in sy.CURVES.values():
        assert curve.loss(20) == 0
        numeric = (curve.loss(ages + 1e-4) - curve.loss(ages - 1e-4)) / 2e-4
        np.testing.assert_allclose(numeric, curve.rate(ages), rtol=1e-5)
        assert np.all(np.diff(curve.rate(ages)) > 0)  # accelerating
    assert sy.CURVES["accelerating"].rate(80) > 5 * sy.CURVES["accelerating"].rate(30)


@pytest.mark.slow
def test_gm_declines_in_ageing_regions_and_not_in_calcarine(cohort):
    table, volumes = read_volumes(cohort)
    regions = ["Hippocampus", "_SFG_", "_AIns_", "Thalamus", "Caudate", "_STG_", "_SPL_",
               "Cerebellum_Exterior", "_Calc_"]
    means = region_means(cohort, volumes, regions)
    relative_slope = {}
    for name, values in means.items():
        slope = np.polyfit(table["age"], values, 1)[0]
        relative_slope[name] = slope / values.mean()
    for name in regions[:-1]:
        assert relative_slope[name] < -0.002, (name, relative_slope[name])  # > 0.2 % per year
    # Primary visual cortex: a negative control (Raz 2005); only smoothing from neighbours reaches it.
    assert abs(relative_slope["_Calc_"]) < 0.3 * abs(relative_slope["Hippocampus"]), relative_slope


def test_noise_free_mean_curve_accelerates(cohort):
    curves = pd.read_csv(cohort / "ground_truth" / "age_curves.csv").set_index("age")
    change = curves["total_gm_change_pct"]
    assert change.loc[20] == 0 and np.all(np.diff(change.loc[20:].to_numpy()) < 0)
    young = (change.loc[20] - change.loc[40]) / 20
    old = -(np.log1p(change.loc[82] / 100) - np.log1p(change.loc[65] / 100)) / 17 * 100
    assert old > 1.5 * young
    assert 0.6 < old < 1.1  # Crivello 2014: ~0.8 %/yr in 65-82-year-olds


def test_calcarine_is_the_control_and_unnamed_regions_take_the_default_effect():
    assert sy.region_effect("Left_Calc_calcarine_cortex").role == "control"
    assert sy.region_effect("Left_Calc_calcarine_cortex").factor == 0
    assert sy.region_effect("Right_Hippocampus").curve == "accelerating"
    assert sy.region_effect("Brain_Stem") is sy.DEFAULT_EFFECT

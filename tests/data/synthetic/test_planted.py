"""A planted-signal cohort: the plant changes exactly the voxels of its mask, dosed by the label age
alone, while an independent nuisance age drives the ageing; its settings are refused in one line."""
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy.stats import spearmanr

from brainage.data import synthetic as sy
from brainage.data.synthetic.deformation import cohort_draws
from brainage.errors import DataError
from tests.builders import compose_data
from tests.data.synthetic.cohort_files import CONFIG, QUIET, read_volumes, region_means

EDGES = (10, 40, 70, 101)
PLANT = {"regions": ["Right_OFuG_occipital_fusiform_gyrus", "Left_SOG_superior_occipital_gyrus"],
         "depth": 0.3, "dose": "bins", "bin_edges": list(EDGES)}
# Nothing moves a voxel (no warp, no smoothing, no ventricle shift): the rendered plant is the mask.
STILL = {**QUIET, "smoothing_fwhm_mm": 0.0, "ventricle_expansion_mm": 0.0}


def _plant(**changes):
    return sy.PlantSettings.from_dict({**PLANT, **changes})


@pytest.fixture(scope="module")
def twins(small_grid, tmp_path_factory):
    """A planted cohort aged 20, 55, 85 and the unplanted cohort of its nuisance ages (same seed)."""
    tmp = tmp_path_factory.mktemp("planted")
    planted = sy.generate_cohort(tmp / "planted", 3, seed=2, ages=[20.0, 55.0, 85.0], grid=small_grid,
                                 n_jobs=1, progress=False, planted=PLANT, **STILL)
    ageing = pd.read_csv(planted / "participants.tsv", sep="\t")["ageing_age"].tolist()
    plain = sy.generate_cohort(tmp / "plain", 3, seed=2, ages=ageing, grid=small_grid, n_jobs=1,
                               progress=False, **STILL)
    return planted, plain


def test_the_plant_changes_exactly_the_masked_voxels(twins, small_grid):
    planted, plain = twins
    table, with_plant = read_volumes(planted)
    _, without = read_volumes(plain)
    img = nib.load(str(planted / "ground_truth" / "planted.nii.gz"))
    assert img.get_data_dtype() == np.uint8 and int(img.header["sform_code"]) == 4
    np.testing.assert_allclose(img.affine, small_grid.affine, atol=1e-5)
    mask = np.asarray(img.dataobj) == 1
    gm = sy.build_anatomy(small_grid).gm
    np.testing.assert_array_equal(mask, sy.planted_mask(sy.build_anatomy(small_grid), _plant()))
    np.testing.assert_array_equal(with_plant[0], without[0])  # dose 0: byte for byte the same
    for s, dose in ((1, 0.5), (2, 1.0)):
        changed = np.abs(with_plant[s] - without[s]) > 1e-6
        assert not (changed & ~mask).any()  # nothing outside the mask
        np.testing.assert_array_equal(changed[gm > 0.01], mask[gm > 0.01])  # all of it, in the GM
        np.testing.assert_allclose(with_plant[s][mask], without[s][mask] * (1 - 0.3 * dose), atol=1e-6)
    regions = pd.read_csv(planted / "ground_truth" / "planted_regions.csv")
    assert list(regions.columns) == ["region", "index", "voxels", "depth"]
    assert regions["region"].tolist() == PLANT["regions"] and (regions["depth"] == 0.3).all()
    assert regions["voxels"].sum() == mask.sum() and mask.sum() > 50


def test_the_record_and_table_name_the_plant(twins, small_grid):
    planted, plain = twins
    record = json.loads((planted / "cohort.json").read_text())
    assert record["parameters"]["planted"] == {**PLANT, "bin_edges": [float(e) for e in EDGES]}
    assert "planted" in record["ground_truth"] and "ageing_age" in record["ground_truth"]
    plain_record = json.loads((plain / "cohort.json").read_text())
    assert "planted" not in plain_record["parameters"] and "planted" not in plain_record["ground_truth"]
    table = pd.read_csv(planted / "participants.tsv", sep="\t")
    assert list(table.columns) == ["subject_id", "age", "sex", "site", "ageing_age"]
    draws = cohort_draws(planted).draws  # the segmentation's redraw ages and doses as the writer did
    assert [d.age for d in draws.values()] == table["ageing_age"].tolist()
    assert [d.dose for d in draws.values()] == [0.0, 0.5, 1.0]
    with pytest.raises(DataError, match=r"planted: None there, .* asked"):
        sy.generate_cohort(plain, 3, seed=2, ages=table["ageing_age"].tolist(), grid=small_grid,
                           progress=False, planted=PLANT, **STILL)


def test_the_ageing_age_is_independent_of_the_label_age():
    settings = sy.SyntheticSettings(seed=4, age_distribution="balanced", planted=_plant())
    table, sites = sy.draw_participants(200, settings)
    rho = spearmanr(table["age"], table["ageing_age"])[0]
    assert abs(rho) < 0.15, rho
    # drawn like the label age (balanced thirds), and nothing else about the subjects changes
    assert np.bincount(np.digitize(table["ageing_age"], [40, 70])).tolist() == [67, 67, 66]
    plain, plain_sites = sy.draw_participants(200, sy.SyntheticSettings(seed=4, age_distribution="balanced"))
    pd.testing.assert_frame_equal(table.drop(columns="ageing_age"), plain)
    assert sites == plain_sites


def test_ageing_follows_the_ageing_age_and_the_plant_the_label_age(small_grid, tmp_path):
    root = sy.generate_cohort(tmp_path / "c", 30, seed=6, age_distribution="balanced", grid=small_grid,
                              n_jobs=1, progress=False, planted=PLANT)
    table, volumes = read_volumes(root)
    means = region_means(root, volumes, ["_SFG_", "Hippocampus", "Right_OFuG_", "Left_SOG_", "_IOG_"])
    for region in ("_SFG_", "Hippocampus"):
        assert spearmanr(table["ageing_age"], means[region])[0] < -0.6
        assert abs(spearmanr(table["age"], means[region])[0]) < 0.3
    for region in ("Right_OFuG_", "Left_SOG_"):
        # relative to a region of the same age effect (inferior occipital): the plant alone
        relative = means[region] / means["_IOG_"]
        assert spearmanr(table["age"], relative)[0] < -0.6
        assert abs(spearmanr(table["ageing_age"], relative)[0]) < 0.3


def test_dose_modes():
    ages = np.array([17.0, 39.9, 40.0, 69.9, 70.0, 90.0])
    bins = sy.SyntheticSettings(planted=_plant())
    np.testing.assert_array_equal(sy.planted_dose(ages, bins), [0, 0, 0.5, 0.5, 1, 1])
    four = sy.SyntheticSettings(planted=_plant(bin_edges=[10, 30, 50, 70, 101]))
    np.testing.assert_allclose(sy.planted_dose([20, 40, 60, 80], four), [0, 1 / 3, 2 / 3, 1])
    linear = sy.SyntheticSettings(planted=_plant(dose="linear"))
    np.testing.assert_allclose(sy.planted_dose(ages, linear), (ages - 17) / 73)
    assert linear.planted.bin_edges is None
    with pytest.raises(DataError, match=r"age 5 is outside data\.bin_edges"):
        sy.planted_dose([5.0], bins)


@pytest.mark.parametrize("key, value, message", [
    ("regions", ["Left_Nowhere"], r"planted\.regions: Left_Nowhere not a grey-matter region of the "
                                  r"Neuromorphometrics atlas; valid: .*Left_SOG_superior_occipital_gyrus"),
    ("regions", [], r"planted\.regions=\[\]; expected a non-empty list"),
    ("regions", ["Left_Cun_cuneus", "Left_Cun_cuneus"], r"planted\.regions=.*distinct"),
    ("depth", 0, r"data\.synthetic\.planted\.depth=0; expected a fraction of grey matter in \(0, 1\]"),
    ("depth", 1.5, r"planted\.depth=1\.5"),
    ("depth", "deep", r"planted\.depth='deep'"),
    ("dose", "step", r"data\.synthetic\.planted\.dose='step'; expected bins or linear"),
    ("enabled", "yes", r"data\.synthetic\.planted\.enabled='yes'; expected true or false"),
    ("depht", 0.2, r"unknown data\.synthetic\.planted setting\(s\) \['depht'\]"),
])
def test_bad_plant_settings_are_refused_in_one_line(key, value, message):
    cfg = OmegaConf.load(CONFIG)
    cfg.synthetic.planted.enabled = True
    OmegaConf.update(cfg, f"synthetic.planted.{key}", value, force_add=True)
    with pytest.raises(DataError, match=message) as caught:
        sy.SyntheticCohortSettings.from_cfg(cfg)
    assert "\n" not in str(caught.value)


def test_a_plant_that_is_no_block_is_refused_in_one_line():
    cfg = OmegaConf.load(CONFIG)
    cfg.synthetic.planted = True
    with pytest.raises(DataError, match=r"data\.synthetic\.planted=True; expected a block"):
        sy.SyntheticCohortSettings.from_cfg(cfg)


def test_bin_dose_needs_the_ages_inside_the_bins():
    cfg = OmegaConf.load(CONFIG)
    cfg.synthetic.planted.enabled = True
    cfg.bin_edges = [20, 40, 70, 101]
    with pytest.raises(DataError, match=r"dose=bins: ages 17-90 reach beyond data\.bin_edges"):
        sy.SyntheticCohortSettings.from_cfg(cfg)
    cfg.synthetic.planted.dose = "linear"  # a linear dose does not read the bins
    assert sy.SyntheticCohortSettings.from_cfg(cfg).parameters.planted.dose == "linear"


def test_the_plant_is_off_by_default_and_the_preset_turns_it_on():
    assert sy.SyntheticCohortSettings.from_cfg(OmegaConf.load(CONFIG)).parameters.planted is None
    data = compose_data("planted")
    request = sy.SyntheticCohortSettings.from_cfg(data)
    yaml = data.synthetic.planted
    assert request.parameters.planted == _plant(regions=list(yaml.regions), depth=yaml.depth)
    assert request.parameters.age_distribution == "balanced"
    root = str(request.root)
    assert root.startswith("data/planted/") and f"bins_depth{yaml.depth}_" in root
    assert all(name in root for name in request.parameters.planted.regions)
    other = compose_data("planted", "synthetic.planted.regions=[Left_Cun_cuneus]")
    assert str(other.root) != root and str(other.root).endswith("_Left_Cun_cuneus")


def test_the_default_regions_have_the_smallest_age_effect():
    """Far from what ageing changes most: the least-ageing group, not the calcarine control."""
    regions = OmegaConf.load(CONFIG).synthetic.planted.regions
    least = min(e.factor for e in sy.REGION_EFFECTS if e.role == "ageing")
    assert 2 <= len(regions) <= 4
    assert all(sy.region_effect(name).factor == least and sy.region_effect(name).role == "ageing"
               for name in regions)

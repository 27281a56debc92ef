"""Localisation against a planted signal (``localisation.mask=planted``): the mask is read from the
cohort, refused in one line without a plant, and a linear model trained on a planted cohort is
localised perfectly by gradient x input, while a model of ageing is not."""
import nibabel as nib
import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from brainage import faithfulness as ff
from brainage.data import synthetic as sy
from brainage.data.bins import assign_bins
from brainage.errors import EvaluateError
from brainage.faithfulness.ground_truth import load_ground_truth
from brainage.faithfulness.settings import LocalisationSettings, ScoringSettings
from brainage.neuro.grid import Grid
from tests.builders import CONFIGS, compose_stage
from tests.data.synthetic.cohort_files import oblique_grid, read_volumes

EDGES = [10, 40, 70, 101]
PLANT = {"regions": ["Right_OFuG_occipital_fusiform_gyrus", "Left_SOG_superior_occipital_gyrus"],
         "depth": 0.3, "dose": "bins", "bin_edges": EDGES}
# Noise, sites, and ageing by the nuisance age as in any cohort, but nothing moves a voxel (no warp,
# no smoothing, no ventricle shift), so the rendered plant is exactly the mask.
STILL = dict(smoothing_fwhm_mm=0.0, site_fwhm_mm=0.0, warp_mm=0.0, rotation_deg=0.0,
             translation_mm=0.0, head_size_sd=0.0, sex_head_size=0.0, ventricle_expansion_mm=0.0)


def _grid():
    """The cohort's oblique grid with a crop, as the evaluate stage sees it."""
    source = oblique_grid()
    return Grid.build(source.affine, source.source_shape, crop_shape=(37, 45, 35), crop_offset=(2, 2, 2))


def _localisation(mask="planted"):
    block = OmegaConf.load(CONFIGS / "evaluate.yaml").localisation
    block.mask = mask
    return LocalisationSettings.from_cfg(block)


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """Planted and plain cohorts (60, balanced), and twins (same draws, ages 20/25 and 85/80)."""
    tmp = tmp_path_factory.mktemp("planted_mask")
    made = {}
    for kind, plant in (("planted", {"planted": PLANT}), ("plain", {})):
        made[kind] = sy.generate_cohort(tmp / kind, 60, seed=11, age_distribution="balanced",
                                        grid=oblique_grid(), n_jobs=1, progress=False, **plant, **STILL)
        for twin, ages in (("young", [20.0, 25.0]), ("old", [85.0, 80.0])):
            made[kind, twin] = sy.generate_cohort(tmp / f"{kind}_{twin}", 2, seed=5, ages=ages,
                                                  grid=oblique_grid(), n_jobs=1, progress=False,
                                                  **plant, **STILL)
    return made


def test_settings_accept_mask_planted():
    assert _localisation().mask == "planted"
    cfg = compose_stage("evaluate", "localisation.mask=planted")
    assert ScoringSettings.from_cfg(cfg).localisation.mask == "planted"


def test_mask_planted_reads_the_cohorts_plant(cohorts):
    grid = _grid()
    truth = load_ground_truth(_localisation(), cohorts["planted"], grid)
    planted = np.asarray(nib.load(str(cohorts["planted"] / "ground_truth" / "planted.nii.gz")).dataobj)
    np.testing.assert_array_equal(truth.mask, grid.crop(planted) == 1)
    assert truth.mask.shape == grid.crop_shape and truth.mask.sum() > 50
    assert all(name in truth.note for name in PLANT["regions"])
    # the control (unchanged calcarine cortex) is kept, outside the plant
    assert truth.control is not None and truth.control.any() and not (truth.control & truth.mask).any()
    effect = load_ground_truth(_localisation("effect"), cohorts["planted"], grid)
    assert not np.array_equal(effect.mask, truth.mask)  # the ageing effect is another mask


def test_mask_planted_without_a_plant_is_one_line(cohorts):
    with pytest.raises(EvaluateError, match=r"localisation\.mask=planted: .*planted\.nii\.gz is "
                                            r"missing; the cohort has no planted signal") as caught:
        load_ground_truth(_localisation(), cohorts["plain"], _grid())
    assert "\n" not in str(caught.value)
    with pytest.raises(EvaluateError, match=r"mask=planted: data\.root is missing"):
        load_ground_truth(_localisation(), None, _grid())


def _linear_model(root, grid):
    """Ridge regression of +1 (oldest bin) / -1 (youngest bin) on the cropped brain voxels:
    weights on the crop, bias, brain mask."""
    table, volumes = read_volumes(root)
    volumes = np.stack([grid.crop(v) for v in volumes]).astype(np.float64)
    bins = assign_bins(table["age"], EDGES)
    keep = bins != 1
    brain = volumes.mean(axis=0) > 0.1
    x, y = volumes[keep][:, brain], np.where(bins[keep] == 2, 1.0, -1.0)
    mean = x.mean(axis=0)
    centred = x - mean
    dual = np.linalg.solve(centred @ centred.T + 0.1 * np.eye(len(y)), y - y.mean())
    weights = np.zeros(brain.shape)
    weights[brain] = centred.T @ dual
    return weights, y.mean() - mean @ weights[brain], brain


def _twin_difference(cohorts, kind, weights, bias, grid):
    """Gradient x input (R = w * x, exact for a linear model) of the old minus the young twins."""
    maps = {}
    for twin in ("young", "old"):
        _, volumes = read_volumes(cohorts[kind, twin])
        x = np.stack([grid.crop(v) for v in volumes]).astype(np.float64)
        maps[twin] = weights * x  # the gradient of w.x + b is w
        logits = x.reshape(len(x), -1) @ weights.ravel() + bias
        np.testing.assert_allclose(maps[twin].reshape(len(x), -1).sum(axis=1), logits - bias, atol=1e-9)
    return maps["old"] - maps["young"]


def test_a_linear_model_of_the_plant_is_localised_perfectly(cohorts):
    """The relevance that tells a high-dose twin from its low-dose twin lies in the plant: AUC 1.
    A model of ageing (the plain cohort, where ageing decides the label) on twins that differ by
    age is not localised to the plant: the same check fails it."""
    grid = _grid()
    mask = load_ground_truth(_localisation(), cohorts["planted"], grid).mask
    weights, bias, brain = _linear_model(cohorts["planted"], grid)
    difference = _twin_difference(cohorts, "planted", weights, bias, grid)
    scores = ff.localisation_scores(difference, mask, brain, relevance="absolute", max_voxels=None)
    assert (scores["auc"] == 1.0).all() and (scores["mass_share"] == 1.0).all()

    weights, bias, brain = _linear_model(cohorts["plain"], grid)
    difference = _twin_difference(cohorts, "plain", weights, bias, grid)
    scores = ff.localisation_scores(difference, mask, brain, relevance="absolute", max_voxels=None)
    assert (scores["auc"] < 0.6).all() and (scores["mass_share"] < 0.05).all()


def _held_out_auc(x, y, folds=5):
    """ROC AUC of ridge predictions, each subject predicted by a model fitted without its fold."""
    predicted = np.empty(len(y))
    for k in range(folds):
        test = np.arange(len(y)) % folds == k
        mean = x[~test].mean(axis=0)
        centred = x[~test] - mean
        dual = np.linalg.solve(centred @ centred.T + 0.1 * np.eye(len(centred)),
                               y[~test] - y[~test].mean())
        predicted[test] = (x[test] - mean) @ (centred.T @ dual)
    return roc_auc_score(y > 0, predicted)


def test_outside_the_plant_the_images_carry_no_label_information(cohorts):
    """Held out, a linear model of the voxels outside the mask is at chance on a planted cohort
    and perfect on the plain one (ageing decides its label everywhere); inside, it is perfect."""
    grid = _grid()
    mask = load_ground_truth(_localisation(), cohorts["planted"], grid).mask
    auc = {}
    for kind in ("planted", "plain"):
        table, volumes = read_volumes(cohorts[kind])
        bins = assign_bins(table["age"], EDGES)
        x = np.stack([grid.crop(v) for v in volumes[bins != 1]]).astype(np.float64)
        y = np.where(bins[bins != 1] == 2, 1.0, -1.0)
        brain = x.mean(axis=0) > 0.1
        for part, voxels in (("inside", brain & mask), ("outside", brain & ~mask)):
            auc[kind, part] = _held_out_auc(x[:, voxels], y)
    assert auc["planted", "inside"] > 0.95, auc
    assert abs(auc["planted", "outside"] - 0.5) < 0.25, auc
    assert auc["plain", "outside"] > 0.95, auc

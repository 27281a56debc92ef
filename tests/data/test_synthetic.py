"""The synthetic cohort generator, on a small oblique grid so that every test takes seconds."""
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.data import synthetic as sy
from brainage.errors import DataError
from brainage.neuro.grid import Grid

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "data" / "synthetic.yaml"

# Every source of between-subject variability switched off.
QUIET = dict(noise_sd=0.0, head_size_sd=0.0, sex_head_size=0.0, rotation_deg=0.0, translation_mm=0.0,
             warp_mm=0.0, site_scale_sd=0.0, site_offset_sd=0.0, site_fwhm_mm=0.0)


@pytest.fixture(scope="module")
def small_grid():
    """4.5 mm voxels, LAS, tilted 4 degrees about x, uneven shape: affine and axis bugs fail loudly."""
    c, s = np.cos(np.deg2rad(4)), np.sin(np.deg2rad(4))
    affine = np.array([[-4.5, 0, 0, 90], [0, 4.5 * c, -4.5 * s, -124], [0, 4.5 * s, 4.5 * c, -74],
                       [0, 0, 0, 1.0]])
    return Grid.build(affine, (41, 49, 39))


@pytest.fixture(scope="module")
def cohort(small_grid, tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "cohort"
    return sy.generate_cohort(root, 36, seed=3, age_distribution="uniform", grid=small_grid, n_jobs=1,
                              progress=False)


def _volumes(root):
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    return table, np.stack([np.asarray(nib.load(str(root / "gm" / f"{sid}_gm.nii.gz")).dataobj)
                            for sid in table["subject_id"]])


def _region_means(root, volumes, names):
    labels = np.asarray(nib.load(str(root / "ground_truth" / "regions.nii.gz")).dataobj)
    regions = pd.read_csv(root / "ground_truth" / "regions.csv")
    out = {}
    for name in names:
        index = regions.loc[regions["name"].str.contains(name), "index"].to_numpy()
        mask = np.isin(labels, index)
        assert mask.sum() > 0, name
        out[name] = volumes[:, mask].mean(axis=1)
    return out


def test_files_follow_the_pac_layout(cohort, small_grid):
    table = pd.read_csv(cohort / "participants.tsv", sep="\t")
    assert list(table.columns) == ["subject_id", "age", "sex", "site"]
    assert len(table) == 36 and table["subject_id"].is_unique
    assert table["age"].between(17, 90).all() and set(table["sex"]) <= {"F", "M"}
    assert set(table["site"]) <= {0, 1, 2}
    for sid in table["subject_id"]:
        img = nib.load(str(cohort / "gm" / f"{sid}_gm.nii.gz"))
        assert img.shape == small_grid.source_shape
        assert img.get_data_dtype() == np.float32
        np.testing.assert_allclose(img.affine, small_grid.affine, atol=1e-5)
        assert int(img.header["sform_code"]) == 4 and int(img.header["qform_code"]) == 4
        data = np.asarray(img.dataobj)
        assert data.min() >= 0 and data.max() <= 1 and data.max() > 0.5
    record = json.loads((cohort / "cohort.json").read_text())
    assert record["n_subjects"] == 36 and record["seed"] == 3 and record["version"] == sy.GENERATOR_VERSION
    assert record["parameters"]["age_distribution"] == "uniform"
    for name in ("age_effect.nii.gz", "regions.nii.gz", "regions.csv", "age_curves.csv"):
        assert (cohort / "ground_truth" / name).is_file()


def test_gm_declines_in_ageing_regions_and_not_in_calcarine(cohort):
    table, volumes = _volumes(cohort)
    regions = ["Hippocampus", "_SFG_", "_AIns_", "Thalamus", "Caudate", "_STG_", "_SPL_",
               "Cerebellum_Exterior", "_Calc_"]
    means = _region_means(cohort, volumes, regions)
    relative_slope = {}
    for name, values in means.items():
        slope = np.polyfit(table["age"], values, 1)[0]
        relative_slope[name] = slope / values.mean()
    for name in regions[:-1]:
        assert relative_slope[name] < -0.002, (name, relative_slope[name])  # > 0.2 % per year
    # Primary visual cortex: a negative control (Raz 2005); only smoothing from neighbours reaches it.
    assert abs(relative_slope["_Calc_"]) < 0.3 * abs(relative_slope["Hippocampus"]), relative_slope


def test_ground_truth_is_the_applied_effect(tmp_path, small_grid):
    root = sy.generate_cohort(tmp_path / "quiet", 3, seed=0, ages=[20.0, 85.0, 52.5], grid=small_grid,
                              n_jobs=1, progress=False, **QUIET)
    table, volumes = _volumes(root)
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


def test_noise_free_mean_curve_accelerates(cohort):
    curves = pd.read_csv(cohort / "ground_truth" / "age_curves.csv").set_index("age")
    change = curves["total_gm_change_pct"]
    assert change.loc[20] == 0 and np.all(np.diff(change.loc[20:].to_numpy()) < 0)
    young = (change.loc[20] - change.loc[40]) / 20
    old = -(np.log1p(change.loc[82] / 100) - np.log1p(change.loc[65] / 100)) / 17 * 100
    assert old > 1.5 * young
    assert 0.6 < old < 1.1  # Crivello 2014: ~0.8 %/yr in 65-82-year-olds


def test_age_curve_is_the_integral_of_its_rate():
    ages = np.linspace(18, 90, 37)
    for curve in sy.CURVES.values():
        assert curve.loss(20) == 0
        numeric = (curve.loss(ages + 1e-4) - curve.loss(ages - 1e-4)) / 2e-4
        np.testing.assert_allclose(numeric, curve.rate(ages), rtol=1e-5)
        assert np.all(np.diff(curve.rate(ages)) > 0)  # accelerating
    assert sy.CURVES["accelerating"].rate(80) > 5 * sy.CURVES["accelerating"].rate(30)


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path, small_grid):
    def make(name, seed):
        return sy.generate_cohort(tmp_path / name, 4, seed=seed, grid=small_grid, n_jobs=1, progress=False)

    a, b, c = make("a", 5), make("b", 5), make("c", 6)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    _, va = _volumes(a)
    _, vc = _volumes(c)
    assert not np.allclose(va, vc)


def test_parallel_workers_write_the_same_files(tmp_path, small_grid):
    one = sy.generate_cohort(tmp_path / "one", 5, seed=2, grid=small_grid, n_jobs=1, progress=False)
    two = sy.generate_cohort(tmp_path / "two", 5, seed=2, grid=small_grid, n_jobs=2, progress=False)
    for path in sorted((one / "gm").iterdir()):
        assert path.read_bytes() == (two / "gm" / path.name).read_bytes(), path.name


def test_existing_cohort_is_reused_and_a_different_one_refused(cohort, small_grid):
    stamp = (cohort / "cohort.json").stat().st_mtime_ns
    again = sy.generate_cohort(cohort, 36, seed=3, age_distribution="uniform", grid=small_grid, n_jobs=1,
                               progress=False)
    assert again == cohort and (cohort / "cohort.json").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match=r"different synthetic cohort.*seed.*data\.root"):
        sy.generate_cohort(cohort, 36, seed=4, age_distribution="uniform", grid=small_grid, progress=False)


def test_interrupted_cohort_is_detected(tmp_path, small_grid):
    root = tmp_path / "half"
    (root / "gm").mkdir(parents=True)
    (root / "gm" / "sub-0001_gm.nii.gz").write_bytes(b"")
    with pytest.raises(DataError, match="no cohort.json: an interrupted"):
        sy.generate_cohort(root, 2, grid=small_grid, progress=False)
    with pytest.raises(DataError, match="interrupted"):
        sy.read_cohort_record(root)


def test_failed_generation_leaves_nothing_behind(tmp_path, small_grid, monkeypatch):
    calls = []

    def fail_on_second(job):
        calls.append(job)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return job[0]

    monkeypatch.setattr(sy, "_write_subject", fail_on_second)
    with pytest.raises(RuntimeError, match="disk full"):
        sy.generate_cohort(tmp_path / "broken", 3, grid=small_grid, n_jobs=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_ensure_cohort_from_the_data_config(tmp_path, small_grid):
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.load(CONFIG)
    cfg.root = str(tmp_path / "synthetic")
    cfg.n_subjects = 6
    cfg.synthetic.age_distribution = "balanced"
    root = sy.ensure_cohort(cfg, grid=small_grid, progress=False)
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    assert np.bincount(np.digitize(table["age"], [40, 70])).tolist() == [2, 2, 2]
    record = json.loads((root / "cohort.json").read_text())
    assert record["parameters"]["noise_sd"] == cfg.synthetic.noise_sd
    assert sy.ensure_cohort(cfg, grid=small_grid) == root
    cfg.synthetic.noise_sd = 0.05
    with pytest.raises(DataError, match=r"noise_sd: 0\.03 there, 0\.05 asked.*another data\.root"):
        sy.ensure_cohort(cfg, grid=small_grid)


def test_config_block_holds_the_generator_defaults():
    omegaconf = pytest.importorskip("omegaconf")
    block = omegaconf.OmegaConf.to_container(omegaconf.OmegaConf.load(CONFIG).synthetic)
    assert sy.SyntheticSettings.from_dict(block) == sy.SyntheticSettings()


def test_ensure_cohort_without_generate_refuses(tmp_path):
    cfg = {"root": str(tmp_path / "none"), "n_subjects": 3, "generate": False, "synthetic": {}}
    with pytest.raises(DataError, match="data.generate is false"):
        sy.ensure_cohort(cfg)


def test_unknown_setting_is_named(tmp_path, small_grid):
    with pytest.raises(DataError, match="'noise'"):
        sy.generate_cohort(tmp_path / "x", 2, grid=small_grid, noise=0.1)


@pytest.mark.parametrize(
    ("distribution", "n", "counts"),
    [("pac2019", 1000, [657, 300, 43]), ("balanced", 301, [101, 100, 100]), ("balanced", 150, [50, 50, 50])],
)
def test_age_distributions(distribution, n, counts):
    ages = sy.sample_ages(n, distribution, np.random.default_rng(0))
    assert np.bincount(np.digitize(ages, [40, 70]), minlength=3).tolist() == counts
    assert ages.min() >= 17 and ages.max() <= 90
    np.testing.assert_allclose(ages * 10, np.round(ages * 10), atol=1e-6)


def test_uniform_ages_cover_the_range():
    ages = sy.sample_ages(2000, "uniform", np.random.default_rng(1), age_min=20, age_max=60)
    assert 20 <= ages.min() < 21 and 59 < ages.max() <= 60
    assert abs(np.median(ages) - 40) < 2


def test_plot_examples_writes_a_png(cohort, tmp_path):
    import matplotlib.pyplot as plt

    out = sy.plot_examples(cohort, tmp_path / "fig" / "cohort.png")
    assert out.is_file() and out.read_bytes()[:4] == b"\x89PNG"
    assert plt.get_fignums() == []

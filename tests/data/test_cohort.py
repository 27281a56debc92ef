"""The data stage on tiny cohorts: reading, validation, caching, binning, balancing, splitting."""
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.data.cache import open_cache
from brainage.data.cohort import prepare_data
from brainage.errors import DataError
from brainage.neuro.grid import Grid
from tests.builders import AFFINE, SHAPE, compose_data, write_gm


def test_prepare_reads_crops_bins_balances_and_splits(tiny_cohort, tmp_path):
    root, cfg, table = tiny_cohort
    prep = prepare_data(cfg, seed=0, run_dir=tmp_path, progress=False)
    assert prep.volumes.shape == (30, 5, 6, 7)
    assert prep.table["bin"].value_counts().tolist() == [10, 10, 10]
    assert set(prep.table["split"]) == {"train", "val", "test"}
    assert prep.grid.source_shape == SHAPE and prep.grid.crop_offset == (1, 1, 2)
    np.testing.assert_allclose(prep.grid.affine, AFFINE)
    # row i of volumes is the crop of subject i's image
    for i in (0, 17, 29):
        sid = prep.table["subject_id"][i]
        img = nib.load(root / "gm" / f"{sid}_gm.nii.gz")
        np.testing.assert_array_equal(prep.volumes[i], img.get_fdata(dtype=np.float32)[1:6, 1:7, 2:9])
    # the crop's world coordinates are those of the source voxels it came from
    ijk = np.array([2, 3, 4, 1.0])
    np.testing.assert_allclose(prep.grid.cropped_affine @ ijk, AFFINE @ (ijk + [1, 1, 2, 0]))
    assert list(prep.split_table().columns) == ["subject_id", "age", "bin", "split"]


def test_rerun_uses_the_cache_and_a_changed_file_rebuilds_it(tiny_cohort, tmp_path, rng):
    root, cfg, _ = tiny_cohort
    prepare_data(cfg, progress=False)
    entries = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1 and open_cache(entries[0]) is not None
    prepare_data(cfg, progress=False)
    assert len([p for p in (tmp_path / "cache").iterdir()]) == 1
    write_gm(root / "gm" / "sub-004_gm.nii.gz", rng.uniform(0, 1, SHAPE))
    prepare_data(cfg, progress=False)
    assert len([p for p in (tmp_path / "cache").iterdir()]) == 2


def test_float16_cache_error_is_within_the_stated_bound(tiny_cohort):
    root, cfg, _ = tiny_cohort
    cfg.cache.dtype = "float16"
    prep = prepare_data(cfg, progress=False)
    worst = 0.0
    for i, sid in enumerate(prep.table["subject_id"]):
        src = nib.load(root / "gm" / f"{sid}_gm.nii.gz").get_fdata(dtype=np.float32)[1:6, 1:7, 2:9]
        worst = max(worst, float(np.abs(prep.volumes[i].astype(np.float32) - src).max()))
    assert 0 < worst <= 2.0 ** -12


def test_n_subjects_takes_a_seeded_subsample(tiny_cohort):
    _, cfg, _ = tiny_cohort
    cfg.n_subjects = 21
    cfg.balance = "none"
    a = prepare_data(cfg, progress=False).table["subject_id"].tolist()
    assert len(a) == 21 and a == prepare_data(cfg, progress=False).table["subject_id"].tolist()


def test_npy_stack_with_ages_table(tmp_path, rng):
    vols = rng.uniform(0, 1, (12,) + SHAPE).astype(np.float32)
    np.save(tmp_path / "gm.npy", vols)
    pd.DataFrame({"age": [20, 25, 30, 35, 45, 50, 55, 60, 75, 80, 85, 88]}).assign(
        subject_id=[f"s{i}" for i in range(12)]).to_csv(tmp_path / "ages.csv", index=False)
    cfg = compose_data("npy", f"participants={tmp_path / 'ages.csv'}", f"npy_path={tmp_path / 'gm.npy'}",
                       "crop_shape=null", "balance=none", "split=[0.5,0.25,0.25]", "split_seed=null",
                       f"cache.dir={tmp_path / 'cache'}", "cache.dtype=float32")
    prep = prepare_data(cfg, seed=1, progress=False)
    assert prep.volumes.shape == (12,) + SHAPE
    i = prep.table.index[prep.table["subject_id"] == "s7"][0]
    np.testing.assert_array_equal(prep.volumes[i], vols[7])
    np.testing.assert_allclose(prep.grid.affine[:3, :3], np.diag([-1.5, 1.5, 1.5]))


def _break(root, sid, how, rng):
    path = root / "gm" / f"{sid}_gm.nii.gz"
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "garbage":
        path.write_bytes(b"this is not a nifti file at all" * 20)
    elif how == "4d":
        write_gm(path, rng.uniform(0, 1, SHAPE + (2,)))
    elif how == "shape":
        write_gm(path, rng.uniform(0, 1, (7, 8, 8)))
    elif how == "affine":
        write_gm(path, rng.uniform(0, 1, SHAPE), np.diag([1.0, 1.0, 1.0, 1.0]))
    elif how == "nan":
        data = rng.uniform(0, 1, SHAPE)
        data[3, 3, 3] = np.nan
        write_gm(path, data)
    elif how == "range":
        write_gm(path, rng.uniform(0, 255, SHAPE))
    return path


@pytest.mark.parametrize("how, message", [
    ("missing", r"sub-005: image file not found: .*sub-005_gm\.nii\.gz"),
    ("truncated", r"sub-005: .*sub-005_gm\.nii\.gz is truncated or corrupt"),
    ("garbage", r"sub-005: cannot read .*sub-005_gm\.nii\.gz as NIfTI"),
    ("4d", r"sub-005: .* has shape \(7, 8, 9, 2\); expected a 3D image"),
    ("shape", r"sub-005: image shape \(7, 8, 8\) does not match the cohort grid \(7, 8, 9\)"),
    ("affine", r"sub-005: affine of .* differs from the cohort's"),
    ("nan", r"sub-005: .* has 1 NaN/inf voxels"),
    ("range", r"sub-005: .* has values in \[.*\]; expected grey-matter probabilities in \[0, 1\]"),
])
def test_bad_image_gives_a_clear_error_and_leaves_no_cache(tiny_cohort, tmp_path, rng, how, message):
    root, cfg, _ = tiny_cohort
    _break(root, "sub-005", how, rng)
    with pytest.raises(DataError, match=message):
        prepare_data(cfg, progress=False)
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())


def test_singleton_fourth_axis_is_fine(tiny_cohort, rng):
    root, cfg, _ = tiny_cohort
    write_gm(root / "gm" / "sub-002_gm.nii.gz", rng.uniform(0, 1, SHAPE + (1,)))
    assert prepare_data(cfg, progress=False).volumes.shape[1:] == (5, 6, 7)


def test_exclude_policy_drops_bad_subjects_and_writes_the_table(tiny_cohort, tmp_path, rng):
    root, cfg, table = tiny_cohort
    cfg.on_bad_subject = "exclude"
    cfg.balance = "none"
    _break(root, "sub-005", "nan", rng)
    _break(root, "sub-012", "missing", rng)
    table = table.astype(object)
    table.loc[20, "age"] = "unknown"
    table.to_csv(root / "participants.tsv", sep="\t", index=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    prep = prepare_data(cfg, run_dir=run_dir, progress=False)
    assert len(prep.table) == 27
    excl = pd.read_csv(run_dir / "exclusions.csv")
    assert sorted(excl["subject_id"]) == ["sub-005", "sub-012", "sub-020"]
    assert excl["reason"].str.contains("non-numeric age 'unknown'").any()
    assert not set(excl["subject_id"]) & set(prep.table["subject_id"])


def test_subjects_without_an_age_are_left_out_and_listed_whatever_the_policy(tiny_cohort,
                                                                              tmp_path):
    root, cfg, table = tiny_cohort
    assert cfg.on_bad_subject == "fail"
    cfg.balance = "none"
    table = table.astype(object)
    table.loc[3, "age"], table.loc[17, "age"] = "", "n/a"
    table.to_csv(root / "participants.tsv", sep="\t", index=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    prep = prepare_data(cfg, run_dir=run_dir, progress=False)
    assert len(prep.table) == 28
    assert not {"sub-003", "sub-017"} & set(prep.table["subject_id"])
    excl = pd.read_csv(run_dir / "exclusions.csv")
    assert list(excl["subject_id"]) == ["sub-003", "sub-017"]
    assert excl["reason"].str.contains("missing age in .*left out of training").all()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.assign(participant_id=["sub-000"] * 2 + list(t["participant_id"][2:])),
     "duplicate subject ids: sub-000"),
    (lambda t: t.assign(age=["old"] + list(t["age"][1:])), "sub-000: non-numeric age 'old'"),
    (lambda t: t.assign(age=[7] + list(t["age"][1:])), r"sub-000: age 7 outside the age bins \[10, 101\)"),
    (lambda t: t.drop(columns="age"), "no 'age' column"),
    (lambda t: t.rename(columns={"participant_id": "name"}), "no subject id column"),
])
def test_bad_table_gives_a_clear_error(tiny_cohort, edit, message):
    root, cfg, table = tiny_cohort
    edit(table.astype(object)).to_csv(root / "participants.tsv", sep="\t", index=False)
    with pytest.raises(DataError, match=message):
        prepare_data(cfg, progress=False)


def test_missing_participants_file(tiny_cohort):
    _, cfg, _ = tiny_cohort
    cfg.participants = "/nonexistent/participants.tsv"
    with pytest.raises(DataError, match="participants table not found: /nonexistent"):
        prepare_data(cfg, progress=False)


def test_csv_with_subject_ID_alias(tiny_cohort):
    root, cfg, table = tiny_cohort
    table.rename(columns={"participant_id": "subject_ID"}).to_csv(root / "p.csv", index=False)
    cfg.participants = str(root / "p.csv")
    assert len(prepare_data(cfg, progress=False).table) == 30


def test_glob_template_must_match_one_file(tiny_cohort):
    root, cfg, _ = tiny_cohort
    cfg.image_template = "{root}/gm/{subject_id}_*.nii.gz"
    assert len(prepare_data(cfg, progress=False).table) == 30
    write_gm(root / "gm" / "sub-003_gm2.nii.gz", np.zeros(SHAPE))
    with pytest.raises(DataError, match="sub-003: pattern .* matches 2 files; expected exactly one"):
        prepare_data(cfg, progress=False)


def test_grid_uncrop_inverts_crop(rng):
    grid = Grid.build(AFFINE, SHAPE, (5, 6, 7), (1, 1, 2))
    vol = rng.uniform(size=(5, 6, 7)).astype(np.float32)
    full = grid.uncrop(vol)
    assert full.shape == SHAPE and full.sum() == pytest.approx(vol.sum())
    np.testing.assert_array_equal(grid.crop(full), vol)
    with pytest.raises(ValueError, match="does not fit"):
        Grid.build(AFFINE, SHAPE, (5, 6, 7), (3, 1, 2))

"""Writing a synthetic cohort: layout, determinism whatever the worker count, reuse and refusal."""
import hashlib
import json
import os

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from brainage.data import synthetic as sy
from brainage.data.synthetic import writer
from brainage.errors import DataError
from tests.data.synthetic.cohort_files import CONFIG, cohort_files, read_volumes

# Seed 7, 5 subjects on the oblique grid, as written by the single-module generator before it was
# split into a package (brainage/data/synthetic.py at e4ee5b9): voxel data of each image, bytes of
# each text file. A change here changes existing cohorts: bump GENERATOR_VERSION with it.
PINNED_SHA256 = {
    "cohort.json": "5760fb7e5c10c9704df032ff53996a9995eeaed24569e227e65819d1768327d5",
    "gm/sub-0001_gm.nii.gz": "32609c2421ae2d5ca1aa9f028f3a9b9fdfa2915a31756bd4ab740e6637e971fe",
    "gm/sub-0002_gm.nii.gz": "78bb825264624d6dec6480cf5149f02c55b4951e67e6c8214fbea234faa721f9",
    "gm/sub-0003_gm.nii.gz": "52d38943407b56659c58aea6d91ed2382634a6d0f1bd4a36147407ee2023bb39",
    "gm/sub-0004_gm.nii.gz": "b93dd698d3776e02728fdcfb931703d95debd2ba5252f535897a2d63c9363290",
    "gm/sub-0005_gm.nii.gz": "c5ebe0a9a534eebbdb3e3eb37438a1538e486eb44bd934374525c4192a351111",
    "ground_truth/age_curves.csv": "2dc7b8e7b12faa3cd0bd67776465c48676f5db951814dd696a6b60d0213a0153",
    "ground_truth/age_effect.nii.gz": "56a036616b12123293f52436f90b827561294c13e97b85fd796201b83a006cb4",
    "ground_truth/regions.csv": "0fa2292f2c8418e383aa1defb23caa78ba741e2add4fe24a5d212c07cdb862c6",
    "ground_truth/regions.nii.gz": "fdf48a065cd7fd3b2ce140f7d5d8a6671794e3a0cf4936452964cf58eaaca49a",
    "participants.tsv": "3e4489e32b40529b60c174d134e795ee51988f4922a8095a5b249522f95384d6",
}


def _sha256(path):
    """Of the voxel data for images (independent of the zlib version), else of the bytes."""
    if path.name.endswith(".nii.gz"):
        data = np.ascontiguousarray(np.asarray(nib.load(str(path)).dataobj))
        return hashlib.sha256(data.tobytes()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def one_and_two_workers(small_grid, tmp_path_factory):
    """The same cohort written by one process and by two worker processes."""
    tmp = tmp_path_factory.mktemp("workers")
    return [sy.generate_cohort(tmp / name, 5, seed=7, grid=small_grid, n_jobs=n_jobs, progress=False)
            for name, n_jobs in (("one", 1), ("two", 2))]


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


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path, small_grid):
    def make(name, seed):
        return sy.generate_cohort(tmp_path / name, 4, seed=seed, grid=small_grid, n_jobs=1, progress=False)

    a, b, c = make("a", 5), make("b", 5), make("c", 6)
    files = cohort_files(a)
    assert files == cohort_files(b)
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    _, va = read_volumes(a)
    _, vc = read_volumes(c)
    assert not np.allclose(va, vc)


@pytest.mark.slow
def test_parallel_workers_write_the_same_files(one_and_two_workers):
    one, two = one_and_two_workers
    assert cohort_files(one) == cohort_files(two)
    for rel in cohort_files(one):
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel


def test_output_matches_the_pinned_checksums(one_and_two_workers):
    for root in one_and_two_workers:
        assert {str(rel): _sha256(root / rel) for rel in cohort_files(root)} == PINNED_SHA256


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

    monkeypatch.setattr(writer, "_write_subject", fail_on_second)
    with pytest.raises(RuntimeError, match="disk full"):
        sy.generate_cohort(tmp_path / "broken", 3, grid=small_grid, n_jobs=1, progress=False)
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


def test_ensure_cohort_from_the_data_config(tmp_path, small_grid):
    cfg = OmegaConf.load(CONFIG)
    cfg.root = str(tmp_path / "synthetic")
    cfg.n_subjects = 6
    cfg.synthetic.age_distribution = "balanced"
    cfg.synthetic.workers = 1
    root = sy.ensure_cohort(cfg, grid=small_grid, progress=False)
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    assert np.bincount(np.digitize(table["age"], [40, 70])).tolist() == [2, 2, 2]
    record = json.loads((root / "cohort.json").read_text())
    assert record["parameters"]["noise_sd"] == cfg.synthetic.noise_sd
    assert "workers" not in record["parameters"]
    stamp = (root / "cohort.json").stat().st_mtime_ns
    cfg.synthetic.workers = 2  # another worker count asks for the same cohort: reused
    assert sy.ensure_cohort(cfg, grid=small_grid) == root
    assert (root / "cohort.json").stat().st_mtime_ns == stamp
    cfg.synthetic.noise_sd = 0.05
    with pytest.raises(DataError, match=r"noise_sd: 0\.03 there, 0\.05 asked.*another data\.root"):
        sy.ensure_cohort(cfg, grid=small_grid)


def test_ensure_cohort_without_generate_refuses(tmp_path):
    cfg = {"root": str(tmp_path / "none"), "n_subjects": 3, "generate": False, "synthetic": {}}
    with pytest.raises(DataError, match="data.generate is false"):
        sy.ensure_cohort(cfg)


class _PoolStarted(Exception):
    """Raised by the stand-in pool: the test only needs the worker count."""


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this platform")
def test_default_worker_count_is_every_available_core(monkeypatch, tmp_path, small_grid):
    started = []

    def pool(workers, **kwargs):
        started.append(workers)
        raise _PoolStarted

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(3)))
    monkeypatch.setattr(writer, "ProcessPoolExecutor", pool)
    with pytest.raises(_PoolStarted):
        sy.generate_cohort(tmp_path / "c", 5, grid=small_grid, progress=False)
    with pytest.raises(_PoolStarted):
        sy.generate_cohort(tmp_path / "d", 2, grid=small_grid, progress=False)
    assert started == [3, 2]  # every core, but never more workers than subjects
    assert list(tmp_path.iterdir()) == []

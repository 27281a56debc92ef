"""The cache is the same whatever the number of threads building it."""
import numpy as np
import pandas as pd
import pytest

from brainage.data.cache import open_cache
from brainage.data.cohort import prepare_data
from tests.builders import SHAPE, write_gm


def _built(cache_dir):
    (entry,) = [p for p in cache_dir.iterdir() if not p.name.startswith(".")]
    return open_cache(entry)


@pytest.mark.parametrize("on_bad", ["fail", "exclude"])
def test_one_and_two_workers_build_the_same_cache(tiny_cohort, tmp_path, rng, on_bad):
    root, cfg, _ = tiny_cohort
    cfg.on_bad_subject = on_bad
    if on_bad == "exclude":
        cfg.balance = "none"
        data = rng.uniform(0, 1, SHAPE)
        data[1, 1, 1] = np.nan
        write_gm(root / "gm" / "sub-007_gm.nii.gz", data)
        (root / "gm" / "sub-021_gm.nii.gz").unlink()
    caches = {}
    for workers in (1, 2):
        cfg.cache.workers = workers
        cfg.cache.dir = str(tmp_path / f"cache{workers}")
        prep = prepare_data(cfg, progress=False)
        caches[workers] = (_built(tmp_path / f"cache{workers}"), prep)
    (one, prep_one), (two, prep_two) = caches[1], caches[2]
    assert one.path.name == two.path.name  # the count is not part of the key
    np.testing.assert_array_equal(np.asarray(one.volumes), np.asarray(two.volumes))
    pd.testing.assert_frame_equal(one.index, two.index)
    pd.testing.assert_frame_equal(one.exclusions, two.exclusions)
    assert len(one.exclusions) == (2 if on_bad == "exclude" else 0)
    pd.testing.assert_frame_equal(prep_one.table, prep_two.table)
    assert (tmp_path / "cache1" / one.path.name / "volumes.npy").read_bytes() == \
        (tmp_path / "cache2" / two.path.name / "volumes.npy").read_bytes()

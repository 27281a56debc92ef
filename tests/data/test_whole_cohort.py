"""Every subject of a cohort read for prediction: ages or not, no bins, no split."""
import logging

import numpy as np
import pytest

from brainage.data.settings import DataSettings
from brainage.data.whole_cohort import whole_cohort
from brainage.errors import DataError
from tests.builders import AFFINE, SHAPE


def test_every_subject_is_kept_in_order_with_unknown_ages_as_nan(tiny_cohort, caplog):
    root, cfg, table = tiny_cohort
    table = table.astype(object)
    table.loc[3, "age"], table.loc[7, "age"], table.loc[9, "age"] = "", "n/a", "old"
    table.loc[11, "age"] = 5  # outside the bins: kept, as an age
    table.to_csv(root / "participants.tsv", sep="\t", index=False)
    seen = []
    with caplog.at_level(logging.WARNING):
        cohort = whole_cohort(DataSettings.from_cfg(cfg), progress=False,
                              check_source=lambda shape, affine: seen.append((shape, affine)))
    assert list(cohort.table["subject_id"]) == [f"sub-{i:03d}" for i in range(30)]
    assert list(np.flatnonzero(cohort.table["age"].isna())) == [3, 7, 9]
    assert cohort.table["age"][11] == 5 and "split" not in cohort.table
    assert "sub-009 ('old')" in caplog.text and "sub-003" not in caplog.text
    assert cohort.volumes.shape == (30, 5, 6, 7) and len(cohort.exclusions) == 0
    assert seen[0][0] == SHAPE and np.allclose(seen[0][1], AFFINE)


def test_the_grid_check_may_refuse_the_cohort(tiny_cohort, tmp_path):
    _, cfg, _ = tiny_cohort
    cfg.cache.dir = str(tmp_path / "fresh_cache")

    def refuse(shape, affine):
        raise DataError(f"not the model's grid: {shape}")

    with pytest.raises(DataError, match=r"not the model's grid: \(7, 8, 9\)"):
        whole_cohort(DataSettings.from_cfg(cfg), progress=False, check_source=refuse)

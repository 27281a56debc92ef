"""Tiny cohorts on uneven grids with non-identity affines, written as real files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.builders import SHAPE, compose_data, write_gm


@pytest.fixture
def tiny_cohort(tmp_path, rng):
    """A PAC-layout cohort of 30 subjects, 10 per default age bin, and its data config."""
    root = tmp_path / "cohort"
    ages = np.concatenate([rng.uniform(18, 39, 10), rng.uniform(41, 69, 10), rng.uniform(71, 90, 10)])
    ids = [f"sub-{i:03d}" for i in range(len(ages))]
    for sid, age in zip(ids, ages):
        write_gm(root / "gm" / f"{sid}_gm.nii.gz", rng.uniform(0, 1, SHAPE) * (1 - age / 200))
    table = pd.DataFrame({"participant_id": ids, "age": np.round(ages, 1), "sex": "F", "site": "A"})
    table.to_csv(root / "participants.tsv", sep="\t", index=False)
    cfg = compose_data(
        "pac2019", "name=tiny", f"root={root}", "source_shape=null", "crop_shape=[5,6,7]",
        "crop_offset=[1,1,2]", "split=[0.6,0.2,0.2]", "split_seed=3", f"cache.dir={tmp_path / 'cache'}",
        "cache.dtype=float32", "stream.workers=1", "stream.prefetch=2")
    return root, cfg, table

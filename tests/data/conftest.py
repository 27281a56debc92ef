"""Tiny cohorts on uneven grids with non-identity affines, written as real files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from tests.builders import SHAPE, write_gm

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
    cfg = OmegaConf.create({
        "name": "tiny", "format": "nifti", "root": str(root),
        "participants": str(root / "participants.tsv"),
        "image_template": "{root}/gm/{subject_id}_gm.nii.gz",
        "npy_path": None, "n_subjects": None, "generate": False,
        "source_shape": None, "crop_shape": [5, 6, 7], "crop_offset": [1, 1, 2], "affine": None,
        "bin_edges": [10, 40, 70, 101], "balance": "downsample", "split": [0.6, 0.2, 0.2],
        "split_seed": 3, "on_bad_subject": "fail", "value_range": [0.0, 1.0],
        "value_tolerance": 0.05,
        "cache": {"enabled": True, "dir": str(tmp_path / "cache"), "dtype": "float32"},
        "stream": {"workers": 1, "prefetch": 2},
    })
    return root, cfg, table

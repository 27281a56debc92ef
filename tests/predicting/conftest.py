"""A tiny age regressor, cohorts made from the tiny runs' own, and the predict stage run as the
command line runs it."""
from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tests.builders import build_regression_run, compose_stage, exit_status, write_gm


@pytest.fixture(scope="session")
def regression_run(tmp_path_factory):
    """The cohort of the tiny classifier with a one-block age regressor and its correction."""
    return build_regression_run(tmp_path_factory.mktemp("regression_run"))


@pytest.fixture
def copy_run():
    """A copy of a training run's directory (tests never change the session's runs)."""
    def copy(run: Path, dest: Path) -> Path:
        shutil.copytree(run, dest)
        return dest
    return copy


@pytest.fixture
def other_cohort():
    """:func:`_other_cohort`."""
    return _other_cohort


def _other_cohort(source: Path, dest: Path, ids=None, ages=None, affine=None, shape=None) -> Path:
    """The cohort at ``source`` written again at ``dest``: subjects renamed to ``ids``, ages set
    to ``ages`` ("" = unknown), images given another ``affine`` or cut to another ``shape``."""
    table = pd.read_csv(source / "participants.tsv", sep="\t", dtype=str, keep_default_na=False)
    ids = list(table["subject_id"]) if ids is None else list(ids)
    for old, new in zip(table["subject_id"], ids):
        img = nib.load(source / "gm" / f"{old}_gm.nii.gz")
        data = np.asarray(img.dataobj)
        if shape is not None:
            data = data[tuple(slice(0, s) for s in shape)]
        write_gm(dest / "gm" / f"{new}_gm.nii.gz", data, img.affine if affine is None else affine)
    out = pd.DataFrame({"subject_id": ids,
                        "age": list(table["age"]) if ages is None else list(ages)})
    out.to_csv(dest / "participants.tsv", sep="\t", index=False)
    return dest


@pytest.fixture
def predict_cli(capsys):
    """``brainage.predict._main`` with a run directory, as ``make predict`` runs it: returns the
    exit status, stdout and stderr."""
    from brainage.predict import _main

    def run(run_dir: Path, *overrides) -> tuple[int, str, str]:
        cfg = compose_stage("predict", "progress=false", *overrides)
        status = exit_status(_main, cfg, run_dir)
        captured = capsys.readouterr()
        return status, captured.out, captured.err
    return run

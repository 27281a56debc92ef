"""make preprocess with the real ANTsPy steps, end to end, on an IXI scan downsampled to 6 mm with
the fewest iterations (about 12 s, most of it the affine on the template): the derivative's files
and tables, and the data format reading the map back. The steps' accuracy is tested on their own
(tests/preprocessing/test_steps.py)."""
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nibabel.processing import resample_to_output

from brainage.config_values import ConfigReader
from brainage.data.derivative import derivative_dir, is_complete, subject_file
from brainage.data.formats import read_format
from brainage.neuro.grid import MNI_1P5MM_AFFINE, MNI_1P5MM_SHAPE
from brainage.preprocessing.pipeline import preprocess_cohort
from tests.builders import compose_data
from tests.preprocessing.fake_steps import IXI

pytest.importorskip("ants", reason="the preprocess extra (antspyx)")

SUBJECTS = ["sub-IXI012HH1211"]
FASTEST = ["steps.n4_iterations=[10]", "steps.n4_brain_iterations=[10]", "steps.affine_iterations=[100]",
           "steps.affine_shrink=[1]", "steps.affine_sigmas=[0]", "steps.syn_iterations=[5]",
           "steps.atropos_iterations=2", "steps.template_resolution_mm=3", "steps.min_brain_ml=500.0"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """An IXI subject at 6 mm, BIDS raw, with its row of the IXI table."""
    root = tmp_path_factory.mktemp("ixi6mm")
    for sid in SUBJECTS:
        t1 = resample_to_output(nib.load(IXI / sid / "anat" / f"{sid}_T1w.nii.gz"), 6.0, order=1)
        (root / sid / "anat").mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.asarray(t1.dataobj, np.float32), t1.affine), root / sid / "anat" / f"{sid}_T1w.nii.gz")
    table = pd.read_csv(IXI / "participants.tsv", sep="\t", dtype=str)
    table[table["participant_id"].isin(SUBJECTS)].to_csv(root / "participants.tsv", sep="\t", index=False)
    return root


@pytest.mark.slow
def test_the_real_steps_make_a_derivative_the_data_format_reads(raw, settings_for, tmp_path):
    summary = preprocess_cohort(settings_for(raw, *FASTEST), tmp_path)
    derivative = derivative_dir(raw, tmp_path / "derivatives")
    assert summary["n_preprocessed"] == 1 and summary["excluded"] == {}
    assert all(is_complete(derivative, sid) for sid in SUBJECTS)
    record = json.loads(subject_file(derivative, SUBJECTS[0], "record").read_text())
    assert {"bias_correction", "affine", "syn", "segmentation", "write", "qc_picture", "total"} <= set(record["seconds"])
    assert 1000 < record["volumes_ml"]["tiv_ml"] < 2200 and 0.4 < record["similarity"] <= 1
    participants = pd.read_csv(derivative / "participants.tsv", sep="\t")
    assert list(participants.columns[:4]) == ["participant_id", "age", "sex", "ixi_id"]
    assert participants["gm_ml"].between(300, 1200).all()
    data = compose_data("t1", f"root={raw}", f"derivatives_dir={tmp_path / 'derivatives'}")
    source = read_format(ConfigReader(data, "data"))
    volume, affine = source.open_volume(source.locate(SUBJECTS[0], 0))
    assert volume.shape == MNI_1P5MM_SHAPE and np.allclose(affine, MNI_1P5MM_AFFINE)
    assert 0 <= volume.min() and volume.max() <= data.value_range[1] and volume.mean() > 0.05

"""The DLMUSE agreement check: Dice and volumes per subject, and intervals that contain the mean."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.benchmark.dlmuse_agreement import agreement, correlation_interval, mean_interval, summary
from brainage.data.derivative import derivative_dir, subject_file


def write_subject(raw, derivatives, sid, shift, gm_ml):
    labels = np.zeros((7, 8, 9), np.int16)
    labels[1:6, 1:7, 1:8] = 81            # white matter
    labels[1:6, 1:7, 1] = 120             # a cortical GM slab
    labels[2:4, 2:4, 4] = 59              # thalamus: GM too
    folder = raw / "derivatives" / "dlmuse" / sid / "anat"
    folder.mkdir(parents=True)
    nib.save(nib.Nifti1Image(labels, np.eye(4)), folder / f"{sid}_dseg.nii.gz")
    derivative = derivative_dir(raw, derivatives)
    mask = np.roll(labels > 0, shift, axis=0).astype(np.uint8)
    gm = np.isin(labels, [120, 59]).astype(np.float32) * 0.9
    for kind, data in (("brain_mask", mask), ("gm_native", gm)):
        path = subject_file(derivative, sid, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    subject_file(derivative, sid, "record").write_text(json.dumps(
        {"volumes_ml": {"tiv_ml": 1400.0 + 10 * shift, "gm_ml": gm_ml}, "seconds": {"total": 30.0 + shift}}))


def test_each_subject_is_compared_with_its_own_labels_and_volumes(tmp_path):
    raw, derivatives = tmp_path / "raw", tmp_path / "derivatives"
    ids = ["sub-a", "sub-b", "sub-c", "sub-d"]
    for i, sid in enumerate(ids):
        write_subject(raw, derivatives, sid, shift=i % 2, gm_ml=700.0 + 20 * i)
    pd.DataFrame({"participant_id": ids, "702": [1.5e6, 1.52e6, 1.55e6, 1.6e6],
                  "601": [8.0e5, 8.2e5, 8.5e5, 8.7e5]}).to_csv(raw / "derivatives" / "dlmuse" / "volumes.tsv",
                                                                sep="\t", index=False)
    table = agreement(raw, derivatives)
    assert list(table.subject_id) == ids
    np.testing.assert_allclose(table.gm_dice, 1.0)                 # GM includes the thalamus label
    np.testing.assert_allclose(table[["recall_cortex", "recall_deep_gm", "gm_in_wm"]], [[1, 1, 0]] * 4)
    assert table.recall_cerebellar_gm.tolist() == [0.0] * 4        # no cerebellar label: nothing found
    # the mask shifted one voxel along x leaves the slab's first row (6 x 1 of 5 x 6) outside it
    np.testing.assert_allclose(table.outside_mask_cortex, [0, 1 / 5, 0, 1 / 5])
    assert table.brain_dice[0] == 1.0 and table.brain_dice[1] < 1.0  # the shifted mask is penalised
    np.testing.assert_allclose(table.dlmuse_gm_ml, [800, 820, 850, 870])
    figures = summary(table)
    assert figures["n_subjects"] == 4
    value, low, high = figures["seconds"]
    assert value == pytest.approx(30.5) and low < value < high


def test_intervals():
    value, low, high = mean_interval([1.0, 2.0, 3.0])
    assert (value, round(low, 3), round(high, 3)) == (2.0, round(2 - 4.303 / np.sqrt(3), 3), round(2 + 4.303 / np.sqrt(3), 3))
    r, low, high = correlation_interval(np.arange(10.0), np.arange(10.0) ** 1.5)
    assert low < r < high < 1


def test_a_missing_derivative_names_the_command(tmp_path):
    (tmp_path / "raw" / "derivatives" / "dlmuse").mkdir(parents=True)
    (tmp_path / "raw" / "derivatives" / "dlmuse" / "volumes.tsv").write_text("participant_id\t702\t601\n")
    with pytest.raises(SystemExit, match="make preprocess data.root="):
        agreement(tmp_path / "raw", tmp_path / "derivatives")


def test_the_disagreement_is_split_by_compartment():
    from brainage.benchmark.dlmuse_agreement import gm_disagreement

    labels = np.zeros((4, 4, 4), int)
    labels[0] = 120                                   # cortex: 16 voxels
    labels[1] = 59                                    # thalamus (deep GM): 16
    labels[2] = 38                                    # cerebellar cortex: 16
    labels[3] = 81                                    # white matter: 16
    gm = np.zeros_like(labels, bool)
    gm[0, :2] = True                                  # half the cortex
    gm[3, 0] = True                                   # 4 WM voxels called GM
    mask = np.ones_like(gm)
    mask[0, 3] = False                                # a quarter of the cortex outside the mask
    found = gm_disagreement(gm, labels, mask)
    assert (found["recall_cortex"], found["recall_deep_gm"], found["recall_cerebellar_gm"]) == (0.5, 0.0, 0.0)
    assert found["outside_mask_cortex"] == 0.25 and found["outside_mask_deep_gm"] == 0.0
    assert found["gm_in_wm"] == 4 / 12

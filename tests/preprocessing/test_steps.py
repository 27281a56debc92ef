"""The ANTsPy steps on a real IXI scan downsampled to 4 mm (seconds, not a minute): each step's
output checked against the independent DLMUSE parcellation of the same scan, and bad images refused."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.processing import resample_to_output
from omegaconf import OmegaConf

from brainage.neuro.grid import MNI_1P5MM_AFFINE, MNI_1P5MM_SHAPE
from brainage.preprocessing.steps import PreprocessError, StepSettings, preprocess_t1
from tests.preprocessing.fake_steps import IXI, IXI_SUBJECT

ROOT = Path(__file__).resolve().parents[2]
ants_steps = pytest.importorskip("brainage.preprocessing.ants_steps", reason="the preprocess extra (antspyx)")

# few iterations: the steps' wiring and outputs are the point here, not their best accuracy
FAST = StepSettings(n4_iterations=(20, 10), n4_brain_iterations=(20, 10), affine_iterations=(500, 200),
                    affine_shrink=(2, 1), affine_sigmas=(1, 0), syn_iterations=(20, 10),
                    min_brain_ml=500.0, template_resolution_mm=4)


def dice(a, b) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """The T1 and DLMUSE's labels of one IXI subject at 4 mm (46 x 61 x 61 voxels, RAS)."""
    folder = tmp_path_factory.mktemp("scan")
    t1 = resample_to_output(nib.load(IXI / IXI_SUBJECT / "anat" / f"{IXI_SUBJECT}_T1w.nii.gz"), 4.0, order=1)
    labels = resample_to_output(nib.load(IXI / "derivatives" / "dlmuse" / IXI_SUBJECT / "anat"
                                         / f"{IXI_SUBJECT}_dseg.nii.gz"), 4.0, order=0)
    path = folder / "t1.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(t1.dataobj, np.float32), t1.affine), path)
    return path, np.asarray(labels.dataobj).astype(int)


@pytest.fixture(scope="module")
def result(scan):
    return preprocess_t1(scan[0], IXI_SUBJECT, FAST)


@pytest.mark.slow
def test_the_brain_mask_from_the_registration_matches_dlmuse(result, scan):
    mask = np.asarray(result.brain_mask.dataobj) > 0
    assert mask.shape == scan[1].shape
    assert dice(mask, scan[1] > 0) > 0.85
    assert 1000 < result.volumes_ml["tiv_ml"] < 2200


@pytest.mark.slow
def test_grey_matter_in_native_space_overlaps_dlmuse_grey_matter(result, scan):
    labels = scan[1]
    dlmuse_gm = ((labels >= 100) & (labels <= 207)) | np.isin(labels, [23, 30, 31, 32, 36, 37, 38, 39, 47, 48, 55,
                                                                         56, 57, 58, 59, 60, 71, 72, 73, 75, 76])
    gm = np.asarray(result.gm_native.dataobj)
    assert dice(gm > 0.5, dlmuse_gm) > 0.5   # 4 mm: half the voxels are partial volumes
    # the segmentation separates tissues: GM probability is high in DLMUSE's GM, low in its white matter
    dlmuse_wm = np.isin(labels, range(81, 89))
    # (at 4 mm most voxels mix tissues: 0.49 vs 0.39 here; at 2 mm, 0.65 vs 0.25, docs/results.md)
    assert gm[dlmuse_gm].mean() > gm[dlmuse_wm].mean() + 0.05
    assert gm[labels == 0].mean() < 0.01
    assert result.volumes_ml["gm_ml"] < result.volumes_ml["tiv_ml"]


@pytest.mark.slow
def test_grey_matter_lands_on_the_pipeline_grid_modulated_and_not(result):
    for image in (result.gm_modulated, result.gm_unmodulated, result.t1_mni):
        assert image.shape == MNI_1P5MM_SHAPE
        np.testing.assert_allclose(image.affine, MNI_1P5MM_AFFINE)
    unmod = np.asarray(result.gm_unmodulated.dataobj)
    mod = np.asarray(result.gm_modulated.dataobj)
    assert unmod.min() >= 0 and unmod.max() <= 1
    inside = unmod > 0.2
    ratio = mod[inside] / unmod[inside]
    assert 0.3 < np.median(ratio) < 3  # the warp's Jacobian: a volume ratio near one
    assert ratio.std() > 0.01          # and not a constant
    # the GM map sits where the template's GM is
    from nilearn import datasets, image
    template_gm = image.resample_img(datasets.load_mni152_gm_template(resolution=2), MNI_1P5MM_AFFINE,
                                     MNI_1P5MM_SHAPE, copy_header=True, force_resample=True)
    r = np.corrcoef(unmod.ravel(), np.asarray(template_gm.dataobj).ravel())[0, 1]
    assert r > 0.5
    assert result.similarity > 0.4


@pytest.mark.slow
def test_every_step_is_timed(result):
    assert list(result.seconds) == ["read", "bias_correction", "affine", "syn", "brain_mask",
                                    "brain_bias_correction", "segmentation", "warp_to_mni"]
    assert all(s >= 0 for s in result.seconds.values())


@pytest.mark.slow
def test_full_modulation_multiplies_by_the_affine_determinant(scan, result):
    full = preprocess_t1(scan[0], IXI_SUBJECT, dataclasses.replace(FAST, modulation="full"))
    unmod = np.asarray(result.gm_unmodulated.dataobj)
    inside = unmod > 0.2
    ratio = np.median(np.asarray(full.gm_modulated.dataobj)[inside] / np.asarray(result.gm_modulated.dataobj)[inside])
    # the subject's brain is smaller than the template's: the affine shrinks it
    assert 0.4 < ratio < 0.95


def test_a_4d_image_is_refused_with_its_shape(tmp_path):
    path = tmp_path / "t1.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((20, 20, 20, 3), np.float32), np.eye(4)), path)
    with pytest.raises(PreprocessError, match=r"sub-x: .* shape \(20, 20, 20, 3\); expected one 3D T1 volume"):
        preprocess_t1(path, "sub-x", FAST)


def test_an_unreadable_and_a_constant_image_are_refused(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti")
    with pytest.raises(PreprocessError, match="sub-x: .* cannot be read as NIfTI"):
        preprocess_t1(bad, "sub-x", FAST)
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20, 20), np.float32), np.eye(4)), flat)
    with pytest.raises(PreprocessError, match="sub-x: .* constant"):
        preprocess_t1(flat, "sub-x", FAST)


def test_a_failed_brain_extraction_is_named_with_the_volume_it_found():
    class Mask:
        spacing = (2.0, 2.0, 2.0)

        def numpy(self):
            return np.ones((10, 10, 10))  # 8 mL
    with pytest.raises(PreprocessError, match=r"sub-x: the brain mask holds 8 mL; expected 700-2500 mL"):
        ants_steps.check_brain(Mask(), "sub-x", StepSettings())


def test_the_config_lists_every_step_setting_with_its_default():
    steps = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "preprocess.yaml").steps)
    defaults = StepSettings()
    assert list(steps) == [f.name for f in dataclasses.fields(StepSettings)]
    for name, value in steps.items():
        assert (tuple(value) if isinstance(value, list) else value) == getattr(defaults, name), name

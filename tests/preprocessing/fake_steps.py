"""Stand-ins for the ANTsPy steps, and tiny raw cohorts cut from a real IXI scan.

The stand-in reads the T1 image (so unreadable and 4D images fail as they would) and returns a
SubjectResult of small images in no time; a subject id containing ``bad`` fails as a step would
(PreprocessError), ``crash`` as an unforeseen bug would, ``big`` has three times the head.
Worker processes import it by name (spawn), so it lives in a module, not in a test.
"""
from __future__ import annotations

import os
import zlib
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from brainage.preprocessing.steps import PreprocessError, SubjectResult

# The shared scans beside the checkout (../shared/data/ixi), wherever the clone is; BRAINAGE_IXI overrides.
IXI = next((p for p in (Path(os.environ.get("BRAINAGE_IXI", "/nonexistent")),
                        Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ixi",
                        Path("/work/shared/data/ixi")) if p.is_dir()),
           Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ixi")
IXI_SUBJECT = "sub-IXI012HH1211"
GM_SHAPE = (7, 8, 9)  # uneven, so an axis mix-up fails loudly
GM_AFFINE = np.array([[-15.0, 0, 0, 45], [0, 15.0, 0, -60], [0, 0, 15.0, -40], [0, 0, 0, 1]])


def fake_preprocess(path, subject_id, settings):
    """A SubjectResult made up from the image at ``path`` (deterministic per subject)."""
    if "bad" in subject_id:
        raise PreprocessError(f"{subject_id}: registration to the template failed (similarity 0.12)")
    if "crash" in subject_id:
        raise RuntimeError("itk::ERROR: the stand-in broke")
    t1 = np.asanyarray(nib.load(str(path)).dataobj).astype(np.float32)
    rng = np.random.default_rng(zlib.crc32(subject_id.encode()))
    gm = rng.uniform(0, 1, GM_SHAPE).astype(np.float32)
    tiv = 1500.0 * (3.0 if "big" in subject_id else 1.0) + rng.normal(0, 30)
    mask = (t1 > t1.mean()).astype(np.uint8)
    return SubjectResult(
        gm_modulated=nib.Nifti1Image(gm * 1.2, GM_AFFINE), gm_unmodulated=nib.Nifti1Image(gm, GM_AFFINE),
        brain_mask=nib.Nifti1Image(mask, nib.load(str(path)).affine),
        gm_native=nib.Nifti1Image(t1 / max(float(t1.max()), 1.0), nib.load(str(path)).affine),
        t1_mni=nib.Nifti1Image(gm, GM_AFFINE),
        volumes_ml={"tiv_ml": tiv, "gm_ml": 0.45 * tiv + rng.normal(0, 5), "wm_ml": 0.35 * tiv,
                    "csf_ml": 0.2 * tiv},
        similarity=0.9 + rng.normal(0, 0.005),
        # the worker's thread setting comes back as a "step", for the tests to see
        seconds={"n4": 0.01, "registration": 0.02,
                 "itk_threads": float(os.environ.get("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", 0))})


@lru_cache(maxsize=1)
def small_ixi_scan(voxel_mm: float = 6.0) -> nib.Nifti1Image:
    """A real IXI T1 downsampled to ``voxel_mm`` (block means over whole voxels, affine scaled)."""
    img = nib.load(str(IXI / IXI_SUBJECT / "anat" / f"{IXI_SUBJECT}_T1w.nii.gz"))
    factor = int(round(voxel_mm / float(img.header.get_zooms()[0])))
    data = np.asanyarray(img.dataobj).astype(np.float32)
    shape = [n // factor for n in data.shape]
    data = data[:shape[0] * factor, :shape[1] * factor, :shape[2] * factor]
    blocks = data.reshape(shape[0], factor, shape[1], factor, shape[2], factor).mean(axis=(1, 3, 5))
    affine = img.affine.copy()
    affine[:3, :3] *= factor
    return nib.Nifti1Image(blocks.astype(np.float32), affine)


def write_raw_cohort(root: Path, ids, ages=None) -> Path:
    """A BIDS raw folder: ``sub-<id>/anat/sub-<id>_T1w.nii.gz`` (the small IXI scan) and
    ``participants.tsv`` (participant_id, age, sex)."""
    scan = small_ixi_scan()
    for sid in ids:
        anat = root / sid / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        nib.save(scan, str(anat / f"{sid}_T1w.nii.gz"))
    ages = ages if ages is not None else [20 + 5 * i for i in range(len(ids))]
    pd.DataFrame({"participant_id": ids, "age": ages, "sex": "F"}).to_csv(
        root / "participants.tsv", sep="\t", index=False)
    return root


def slow_preprocess(path, subject_id, settings):
    """A step that takes a minute: a run is interrupted while it is in progress."""
    import time

    time.sleep(60)
    return fake_preprocess(path, subject_id, settings)

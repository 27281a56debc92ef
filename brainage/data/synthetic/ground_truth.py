"""The cohort's ground truth: the applied age effect per voxel and per region, and the mean GM curve.

``ground_truth/age_effect.nii.gz`` is the **total expected change of GM probability from age 20 to
85** per voxel (negative = loss), for the noise-free, unwarped subject with the cohort's base
smoothing; ``regions.nii.gz`` the label each GM voxel's effect came from; ``regions.csv`` each
region's factor and curve; ``age_curves.csv`` the age curves and the whole-brain GM change by age.
A planted cohort adds ``planted.nii.gz`` and ``planted_regions.csv`` (:mod:`.plant`); its
age effect is that of the nuisance age that drives ageing.
"""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from brainage.data.synthetic.ageing import CURVES, REFERENCE_AGES, ventricle_displacement_mm
from brainage.data.synthetic.atrophy import atrophied_gm, loss_maps
from brainage.data.synthetic.plant import planted_mask, planted_regions
from brainage.data.synthetic.render import expected_gm

DESCRIPTION = {
    "age_effect": "expected GM probability at age 85 minus at age 20 (noise-free, unwarped, base "
                  "smoothing); negative = loss",
    "regions": "Neuromorphometrics label each GM voxel's effect came from",
}
"""What the ground-truth images hold, as recorded in ``cohort.json``."""


def save_mni_nifti(data: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write ``data`` with ``affine`` as sform and qform, both coded MNI 152, units mm."""
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    img.set_sform(affine, code=4)  # 4 = MNI 152
    img.set_qform(affine, code=4)
    nib.save(img, str(path))


def write_ground_truth(folder: Path, anatomy, settings) -> None:
    """Write the four ground-truth files of the cohort (six with a plant) into ``folder`` (created).

    Parameters
    ----------
    folder : Path
    anatomy : Anatomy
    settings : SyntheticSettings
    """
    folder.mkdir(parents=True)
    young, old = (expected_gm(anatomy, age, settings) for age in REFERENCE_AGES)
    effect = (old - young).astype(np.float32)
    save_mni_nifti(effect, anatomy.affine, folder / "age_effect.nii.gz")
    save_mni_nifti(anatomy.labels.astype(np.int32), anatomy.affine, folder / "regions.nii.gz")
    _region_effects(anatomy, effect, settings).to_csv(folder / "regions.csv", index=False,
                                                      float_format="%.6g")
    _age_curves(anatomy, settings).to_csv(folder / "age_curves.csv", index=False, float_format="%.6g")
    plant = settings.planted
    if plant is not None:
        save_mni_nifti(planted_mask(anatomy, plant).astype(np.uint8), anatomy.affine,
                       folder / "planted.nii.gz")
        planted_regions(anatomy, plant).assign(depth=plant.depth).to_csv(
            folder / "planted_regions.csv", index=False, float_format="%.6g")


def _region_effects(anatomy, effect: np.ndarray, settings) -> pd.DataFrame:
    """Per GM region: its factor and curve, the relative loss 20-85 and the mean applied change."""
    table = anatomy.label_table
    labels = anatomy.labels.ravel()
    in_gm = anatomy.gm.ravel() > 0.01
    counts = np.bincount(labels[in_gm], minlength=int(table["index"].max()) + 1)
    sums = np.bincount(labels[in_gm], weights=effect.ravel()[in_gm], minlength=counts.size)
    span = {name: float(c.loss(REFERENCE_AGES[1]) - c.loss(REFERENCE_AGES[0])) for name, c in CURVES.items()}
    rows = table.assign(
        effect_scale=settings.effect_scale,
        relative_loss_20_85=[settings.effect_scale * f * span[c]
                             for f, c in zip(table["factor"], table["curve"])],
        mean_change_20_85=[sums[i] / counts[i] if counts[i] else 0.0 for i in table["index"]],
        n_voxels=[int(counts[i]) for i in table["index"]],
    )
    rows = rows[rows["role"] != "no_gm"]
    return rows[["name", "index", "group", "role", "curve", "factor", "effect_scale",
                 "relative_loss_20_85", "mean_change_20_85", "n_voxels"]]


def _age_curves(anatomy, settings) -> pd.DataFrame:
    """Per whole year of the cohort's age range: the curves, the ventricles' shift, total GM change."""
    maps = loss_maps(anatomy, settings)
    total0 = atrophied_gm(anatomy, maps, REFERENCE_AGES[0]).sum()
    ages = np.arange(np.floor(settings.age_min), np.ceil(settings.age_max) + 1)
    total = np.array([atrophied_gm(anatomy, maps, a).sum() for a in ages])
    return pd.DataFrame({
        "age": ages,
        "cortical_loss": CURVES["cortical"].loss(ages),
        "accelerating_loss": CURVES["accelerating"].loss(ages),
        "ventricle_expansion_mm": ventricle_displacement_mm(ages, settings),
        "total_gm_change_pct": 100.0 * (total / total0 - 1.0),
    })

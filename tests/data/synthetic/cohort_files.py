"""Reading a generated synthetic cohort back, its data config, a small grid, quiet settings."""
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from brainage.neuro.grid import Grid

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "data" / "synthetic.yaml"

# Every source of between-subject variability switched off.
QUIET = dict(noise_sd=0.0, head_size_sd=0.0, sex_head_size=0.0, rotation_deg=0.0, translation_mm=0.0,
             warp_mm=0.0, site_scale_sd=0.0, site_offset_sd=0.0, site_fwhm_mm=0.0)


def oblique_grid() -> Grid:
    """4.5 mm voxels, LAS, tilted 4 degrees about x, uneven shape: affine and axis bugs fail loudly."""
    c, s = np.cos(np.deg2rad(4)), np.sin(np.deg2rad(4))
    affine = np.array([[-4.5, 0, 0, 90], [0, 4.5 * c, -4.5 * s, -124], [0, 4.5 * s, 4.5 * c, -74],
                       [0, 0, 0, 1.0]])
    return Grid.build(affine, (41, 49, 39))


def read_volumes(root):
    """The participants table and the stacked GM images in its order."""
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    return table, np.stack([np.asarray(nib.load(str(root / "gm" / f"{sid}_gm.nii.gz")).dataobj)
                            for sid in table["subject_id"]])


def region_means(root, volumes, names):
    """Mean GM of each subject in the ground-truth regions whose name contains each of ``names``."""
    labels = np.asarray(nib.load(str(root / "ground_truth" / "regions.nii.gz")).dataobj)
    regions = pd.read_csv(root / "ground_truth" / "regions.csv")
    out = {}
    for name in names:
        index = regions.loc[regions["name"].str.contains(name), "index"].to_numpy()
        mask = np.isin(labels, index)
        assert mask.sum() > 0, name
        out[name] = volumes[:, mask].mean(axis=1)
    return out


def cohort_files(root):
    """Every file under ``root``, relative to it, sorted."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())

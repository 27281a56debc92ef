"""Figure of a synthetic cohort: a young and an old subject beside the ground-truth age effect."""
from __future__ import annotations

import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brainage.data.synthetic import REFERENCE_AGES, generate_cohort

DEFAULT_CUTS_MM = (("z", -14.0), ("y", -22.0), ("x", -8.0))
"""Hippocampus axially (z = -14) and coronally (y = -22), calcarine cortex sagittally (x = -8)."""


def cohort_figure(root, ages=REFERENCE_AGES, cuts_mm=DEFAULT_CUTS_MM) -> Figure:
    """A figure of the subjects closest to ``ages`` and the ground-truth effect map of a cohort.

    Parameters
    ----------
    root : str or Path
        A generated synthetic cohort.
    ages : sequence of float
        One column per age: the subject closest to it; the last column is the ground truth.
    cuts_mm : sequence of (str, float)
        One row per cut: nilearn display mode and MNI coordinate.

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot: nothing global changes, and it is freed with its last reference.
    """
    from nilearn import plotting

    root = Path(root)
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    rows = [table.iloc[int((table["age"] - age).abs().argmin())] for age in ages]
    images = [nib.load(str(root / "gm" / f"{row['subject_id']}_gm.nii.gz")) for row in rows]
    effect = nib.load(str(root / "ground_truth" / "age_effect.nii.gz"))
    vmax = float(np.percentile(np.abs(np.asarray(effect.dataobj)), 99.5))

    fig = Figure(figsize=(3.6 * (len(ages) + 1), 3.2 * len(cuts_mm)), facecolor="black")
    axes = fig.subplots(len(cuts_mm), len(ages) + 1, squeeze=False)
    for r, (mode, cut) in enumerate(cuts_mm):
        first = r == 0
        for col, (row, img) in enumerate(zip(rows, images)):
            plotting.plot_img(img, display_mode=mode, cut_coords=[cut], axes=axes[r, col], cmap="gray",
                              vmin=0, vmax=1, black_bg=True, colorbar=False,
                              title=f"{row['subject_id']}, age {row['age']:.0f}" if first else None)
        plotting.plot_stat_map(effect, bg_img=images[0], display_mode=mode, cut_coords=[cut],
                               axes=axes[r, -1], cmap="RdBu_r", vmax=vmax, black_bg=True,
                               colorbar=r == len(cuts_mm) - 1, threshold=0.1 * vmax,
                               title=f"truth: GM change {REFERENCE_AGES[0]:.0f}->{REFERENCE_AGES[1]:.0f}"
                               if first else None)
    return fig


def plot_examples(root, out_png, ages=REFERENCE_AGES, cuts_mm=DEFAULT_CUTS_MM) -> Path:
    """Write :func:`cohort_figure` of the cohort at ``root`` as a PNG.

    Parameters
    ----------
    root : str or Path
        A generated cohort.
    out_png : str or Path
        Where to write the PNG (parent folders are created).
    ages, cuts_mm
        See :func:`cohort_figure`.

    Returns
    -------
    Path
        ``out_png``.
    """
    fig = cohort_figure(root, ages, cuts_mm)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100, facecolor="black", bbox_inches="tight")
    return out_png


def make_readme_figure(out_png="docs/figures/synthetic_cohort.png", workdir=None) -> Path:
    """Generate a two-subject cohort aged 20 and 85 and draw :func:`plot_examples` from it.

    This is the figure of ``docs/data.md`` (``docs/figures/synthetic_cohort.png``).

    Parameters
    ----------
    out_png : str or Path
    workdir : str, Path or None
        Where to generate the cohort (default: a temporary folder, removed afterwards).

    Returns
    -------
    Path
    """
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(workdir or tmp) / "synthetic_figure"
        generate_cohort(root, 2, seed=0, ages=REFERENCE_AGES, n_jobs=1, progress=False)
        return plot_examples(root, out_png)

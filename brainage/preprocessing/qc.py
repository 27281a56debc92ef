"""Quality control: each subject's picture, and its measures scored against the cohort's.

A subject is flagged when a measure lies far from the cohort's median in robust z-scores
(median and 1.4826 x MAD, so the outliers themselves do not hide each other): a low similarity
to the template (a failed registration), or an odd total intracranial volume or grey-matter
fraction (a failed brain extraction or segmentation). Flagged subjects stay in the derivative;
the report shows them first.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from brainage.reporting.canvas import new_figure, save

# Measure -> the side that is suspicious ("low": only too low; "both": too low or too high).
MEASURES = {"similarity": "low", "tiv_ml": "both", "gm_fraction": "both"}
MIN_SUBJECTS = 5  # fewer: no cohort to compare with, nothing flagged
OK, FLAGGED, EXCLUDED = "ok", "flagged", "excluded"


def robust_z(values) -> np.ndarray:
    """``(x - median) / (1.4826 MAD)`` over the finite values; 0 when they do not vary."""
    x = np.asarray(values, dtype=float)
    finite = np.isfinite(x)
    z = np.full_like(x, np.nan)
    if finite.sum() < MIN_SUBJECTS:
        z[finite] = 0.0
        return z
    median = np.median(x[finite])
    mad = 1.4826 * np.median(np.abs(x[finite] - median))
    z[finite] = (x[finite] - median) / mad if mad > 0 else 0.0
    return z


def score_subjects(rows: pd.DataFrame, z_threshold: float) -> pd.DataFrame:
    """``rows`` (one per subject: ``status`` done or excluded, the volumes and similarity) with
    ``gm_fraction``, a ``z_<measure>`` column per measure, ``flags`` and the QC ``status``."""
    out = rows.copy()
    out["gm_fraction"] = out["gm_ml"] / out["tiv_ml"]
    done = out["status"] != EXCLUDED
    flags = pd.Series("", index=out.index)
    for measure, side in MEASURES.items():
        z = pd.Series(np.nan, index=out.index)
        z[done] = robust_z(out.loc[done, measure])
        out[f"z_{measure}"] = z.round(2)
        beyond = (z < -z_threshold) if side == "low" else (z.abs() > z_threshold)
        flags[beyond] = flags[beyond] + f"{measure} z=" + z[beyond].map("{:.1f}".format) + "; "
    out["flags"] = flags.str.rstrip("; ")
    out.loc[done & (out["flags"] != ""), "status"] = FLAGGED
    out.loc[done & (out["flags"] == ""), "status"] = OK
    return out


@lru_cache(maxsize=1)
def _template():
    """nilearn's MNI152 template (bundled: no download), once per process."""
    from nilearn.datasets import load_mni152_template

    return load_mni152_template(resolution=2)


def write_picture(gm_img, path, title: str, dpi: int) -> None:
    """The GM map's 0.5 contour over the MNI template, three orthogonal slices, small: ``path``
    (PNG). A failed registration shows as cortex that does not follow the template's."""
    from nilearn import plotting

    fig, axes = new_figure(figsize=(6.0, 2.2), facecolor="black")
    display = plotting.plot_anat(_template(), display_mode="ortho", cut_coords=(0, -18, 12), axes=axes,
                                 title=title, annotate=False, draw_cross=False, black_bg=True,
                                 colorbar=False)
    display.add_contours(gm_img, levels=[0.5], colors="r", linewidths=0.8)
    save(fig, path, dpi=dpi, facecolor="black")

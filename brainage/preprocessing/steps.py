"""One raw T1 image to grey matter on the pipeline's 1.5 mm MNI grid, with ANTsPy.

Steps (each timed): read and check the image; N4 bias-field correction; registration to nilearn's
MNI152 2009 template (affine, then SyN), whose inverse carries the template's brain mask back to
the subject (a registration-based brain extraction, no separate skull stripper); Atropos three-class
segmentation inside that mask, initialised with the template's tissue priors; grey matter warped
onto the 121 x 145 x 121 1.5 mm grid, unmodulated and modulated by the warp's Jacobian.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from brainage.errors import DataError


class PreprocessError(DataError):
    """One subject that cannot be preprocessed; the message names it and the reason."""


@dataclass(frozen=True)
class StepSettings:
    """The knobs of :func:`preprocess_t1` (``configs/preprocess.yaml``, block ``steps``)."""

    n4_shrink: int = 4
    affine_iterations: tuple = (200, 100, 50)
    syn_iterations: tuple = (40, 20, 0)
    syn_metric: str = "CC"
    template_resolution_mm: int = 2
    atropos_iterations: int = 3
    prior_weight: float = 0.25
    min_brain_ml: float = 800.0
    max_brain_ml: float = 2500.0


@dataclass
class SubjectResult:
    """What :func:`preprocess_t1` makes of one subject (images are nibabel images)."""

    gm_modulated: object      # 121 x 145 x 121, 1.5 mm MNI
    gm_unmodulated: object    # same grid
    brain_mask: object        # native space, uint8
    gm_native: object         # native space, GM probability
    t1_mni: object            # the bias-corrected T1 on the 1.5 mm grid (QC overlays)
    volumes_ml: dict          # tiv, gm, wm, csf (native space)
    similarity: float         # correlation of the warped T1 with the template inside the brain
    seconds: dict = field(default_factory=dict)


def preprocess_t1(path, subject_id: str, settings: StepSettings = StepSettings()) -> SubjectResult:
    """Preprocess the T1 image at ``path``; a bad image raises :class:`PreprocessError`."""
    from brainage.preprocessing import ants_steps  # deferred: imports ANTsPy (the preprocess extra)

    return ants_steps.run(path, subject_id, settings)

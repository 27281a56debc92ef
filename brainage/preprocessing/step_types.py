"""What the steps take and give for one subject: their settings, their result, the subject's error."""
from __future__ import annotations

from dataclasses import dataclass, field

from brainage.errors import DataError


class PreprocessError(DataError):
    """One subject that cannot be preprocessed; the message names it and the reason."""


@dataclass(frozen=True)
class StepSettings:
    """The knobs of :func:`preprocess_t1` (``configs/preprocess.yaml``, block ``steps``)."""

    seed: int = 1                        # ANTs' sampling: the same files on every run
    n4_shrink: int = 4
    n4_iterations: tuple = (50, 50, 25)           # whole head, for the registration
    n4_brain_iterations: tuple = (50, 50, 50, 50)  # again inside the brain mask, for segmentation
    template_resolution_mm: int = 2      # nilearn's MNI152 2009 at 1 or 2 mm
    initial_scale: float = 0.89          # subject / template length: a typical adult brain
    affine_mask_dilation: int = 4        # voxels around the template brain where the metric counts
    affine_iterations: tuple = (2100, 1200, 1200, 10)
    affine_shrink: tuple = (6, 4, 2, 1)
    affine_sigmas: tuple = (3, 2, 1, 0)
    syn_metric: str = "mattes"
    syn_sampling: int = 32
    syn_iterations: tuple = (60, 30, 0)
    mask_threshold: float = 0.15         # the template's brain mask, interpolated onto the subject
    atropos_iterations: int = 5
    prior_weight: float = 0.25
    mrf_weight: float = 0.1
    modulation: str = "nonlinear"        # nonlinear: head size factored out | full: native volumes
    min_brain_ml: float = 700.0
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

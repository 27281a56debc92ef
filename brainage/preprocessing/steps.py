"""One raw T1 image to grey matter on the pipeline's 1.5 mm MNI grid, with ANTsPy.

Steps (each timed): read and check the image; N4 bias-field correction; registration to nilearn's
MNI152 2009 template (affine, then SyN), whose inverse carries the template's brain mask back to
the subject (a registration-based brain extraction, no separate skull stripper); N4 again inside
that mask; Atropos three-class segmentation inside it, with the template's tissue priors; grey matter warped
onto the 121 x 145 x 121 1.5 mm grid, unmodulated and modulated by the warp's Jacobian.
"""
from __future__ import annotations

from brainage.preprocessing.step_types import PreprocessError, StepSettings, SubjectResult

__all__ = ["PreprocessError", "StepSettings", "SubjectResult", "preprocess_t1"]


def preprocess_t1(path, subject_id: str, settings: StepSettings | None = None) -> SubjectResult:
    """Preprocess the T1 image at ``path``; a bad image raises :class:`PreprocessError`."""
    from brainage.preprocessing import ants_steps  # deferred: imports ANTsPy (the preprocess extra)

    return ants_steps.run(path, subject_id, settings or StepSettings())

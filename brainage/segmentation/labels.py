"""Each subject's label map: the atlas structure carried by the subject's own deformation.

A synthetic subject's GM image is the aged template pulled back through its deformation
(head size, rotation, translation, smooth DCT warp, ventricle displacement), redrawn exactly from
the cohort's ``cohort.json`` (:mod:`brainage.data.synthetic.deformation`). The structure's atlas
indicator is pulled back the same way (linear interpolation, kept where ≥ 0.5), so labels and image
agree voxel for voxel. Without warping the labels are the atlas in MNI space for every subject:
right up to the generator's residual misregistration (about 0.5–1 mm).
"""
from __future__ import annotations

import numpy as np

from brainage.data.synthetic.anatomy import build_anatomy
from brainage.data.synthetic.deformation import cohort_draws, warp_to_subject
from brainage.errors import SegmentationError
from brainage.neuro.grid import Grid

PARTIAL_VOLUME_CUT = 0.5  # the warped indicator's level kept as the structure


def atlas_labels(mask: np.ndarray, box: Grid, n_subjects: int) -> np.ndarray:
    """The atlas structure in MNI space, the same for every subject: ``(n, *box.crop_shape)`` uint8."""
    return np.repeat(box.crop(mask)[None].astype(np.uint8), n_subjects, axis=0)


def warped_labels(mask: np.ndarray, box: Grid, subject_ids, root) -> np.ndarray:
    """The structure carried onto each subject of the synthetic cohort in ``root``.

    Parameters
    ----------
    mask : bool array on the source grid
        The structure in MNI space.
    box : Grid
        The source grid with the U-Net's box as its crop.
    subject_ids : sequence of str
    root : str or Path
        The synthetic cohort (its ``cohort.json`` and ``participants.tsv``).

    Returns
    -------
    uint8 array ``(n, *box.crop_shape)``

    Raises
    ------
    SegmentationError
        When the cohort is on another grid or lacks a subject; DataError when ``root`` is not a
        synthetic cohort.
    """
    cohort = cohort_draws(root)
    if cohort.grid.source_shape != box.source_shape or not np.allclose(cohort.grid.affine, box.affine,
                                                                          atol=1e-4):
        raise SegmentationError(f"unet: the synthetic cohort in {root} was generated on the grid "
                                f"{cohort.grid.source_shape}, not the images' {box.source_shape}")
    unknown = [sid for sid in subject_ids if sid not in cohort.draws]
    if unknown:
        raise SegmentationError(f"unet: {root}/cohort.json does not redraw subject(s) {unknown[:5]}; "
                                "set structure.warp=false to use the atlas labels in MNI space")
    anatomy = build_anatomy(cohort.grid)
    indicator = mask.astype(np.float32)
    out = np.empty((len(subject_ids),) + box.crop_shape, dtype=np.uint8)
    for i, sid in enumerate(subject_ids):
        warped = warp_to_subject(indicator, anatomy, cohort.draws[sid], cohort.settings, box.slices)
        out[i] = warped >= PARTIAL_VOLUME_CUT
    return out

"""The U-Net run's NIfTI files: label, prediction and relevance maps in world space.

Every map is put back on the source grid with the subject's own header (the crop undone), so it
lies voxel for voxel over the subject's GM image in a viewer, with a display range
(:mod:`brainage.neuro.nifti`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from brainage.neuro.nifti import MapLabel, display_range, reference_header, relevance_image, save_atomic
from brainage.segmentation.dataset import SegmentationData

TARGET = "predicted-mask-logit-sum"


def _write(volume, data: SegmentationData, row: int, header, label: MapLabel, path: Path, rule) -> str:
    brain = rule.brain_mask(data.x[row, ..., 0])
    img = relevance_image(volume, data.box, header, label, display_range(volume, brain, rule))
    save_atomic(img, path)
    return path.name


def write_maps(run, data: SegmentationData, threshold: float, rule, folder) -> list[str]:
    """``<subject>_label``, ``<subject>_prediction`` and ``<subject>_<tag>`` maps of every explained
    subject into ``folder``; returns the file names.

    Parameters
    ----------
    run : UNetRun
    data : SegmentationData
    threshold : float
        Logit threshold of the prediction.
    rule : DisplayRule
    folder : path
    """
    folder = Path(folder)
    names = []
    for k, row in enumerate(run.explained):
        sid = data.table["subject_id"].iloc[row]
        path = data.table["path"].iloc[row] if "path" in data.table.columns else None
        header = reference_header(path, data.box)
        masks = {"label": data.y[row], "prediction": run.logits[k] > threshold}
        for what, mask in masks.items():
            label = MapLabel(what, TARGET, what=f"{what} mask", checks="n/a")
            names.append(_write(mask.astype(np.float32), data, row, header, label,
                                folder / f"{sid}_{what}.nii.gz", rule))
        for e in run.explanations:
            checks = "n/a" if e.rel_error is None else f"cons={e.rel_error[k]:.1e}"
            label = MapLabel(e.method, TARGET, checks=checks)
            names.append(_write(e.maps[k], data, row, header, label,
                                folder / f"{sid}_{e.tag}.nii.gz", rule))
    return names

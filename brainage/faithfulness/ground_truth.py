"""The synthetic cohort's ground truth on the network's crop: where ageing was put, and a control.

The generator writes ``<cohort>/ground_truth/``: ``age_effect.nii.gz`` (GM change from age 20 to 85),
``regions.nii.gz`` and ``regions.csv`` (name, index, role: ageing or control), and in a planted
cohort ``planted.nii.gz`` (the voxels of the signal that alone decides the label) with
``planted_regions.csv``. Real cohorts have none, and localisation is then skipped with a note
(``mask=planted`` asks for a plant: without one it is an error).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.errors import EvaluateError


@dataclass(frozen=True)
class GroundTruth:
    """Cropped masks: the aged voxels and the control voxels (None where unknown), and a note."""

    mask: np.ndarray | None  # None: no ground truth (the note says why)
    control: np.ndarray | None
    note: str


def load_ground_truth(settings, data_root, grid) -> GroundTruth:
    """The ground truth named by ``settings`` (:class:`LocalisationSettings`), cropped by ``grid``.

    ``settings.ground_truth`` names the folder; None: ``<data_root>/ground_truth``, where a missing
    folder means the cohort is not synthetic (no error).
    """
    folder = (Path(settings.ground_truth) if settings.ground_truth
              else Path(str(data_root)) / "ground_truth" if data_root else None)
    if settings.mask == "planted":
        return _planted_truth(folder, grid)
    effect_path = folder / "age_effect.nii.gz" if folder else None
    if effect_path is None or not effect_path.is_file():
        if settings.ground_truth:
            raise EvaluateError(f"localisation.ground_truth={folder} holds no age_effect.nii.gz")
        return GroundTruth(None, None, f"no ground truth ({effect_path or 'data.root'} is "
                                       "missing): the cohort is not synthetic, so localisation "
                                       "was skipped")
    table_path, labels_path = folder / "regions.csv", folder / "regions.nii.gz"
    table = pd.read_csv(table_path) if table_path.is_file() else None
    labels = _cropped(labels_path, "region labels", grid) if labels_path.is_file() else None
    if settings.mask == "regions":
        if table is None or labels is None:
            raise EvaluateError(f"localisation.mask=regions needs {table_path} and {labels_path}")
        mask, what = _region_mask(settings.regions, table, labels, table_path)
    else:
        effect = _cropped(effect_path, "age effect", grid).astype(np.float32)
        mask = np.abs(effect) > settings.threshold
        what = f"|age effect 20→85| > {settings.threshold:g}"
    return GroundTruth(mask, _control_mask(table, labels), f"{what} ({folder})")


def _planted_truth(folder: Path | None, grid) -> GroundTruth:
    """The planted voxels (``planted.nii.gz``), and the control regions outside them."""
    path = folder / "planted.nii.gz" if folder else None
    if path is None or not path.is_file():
        raise EvaluateError(f"localisation.mask=planted: {path or 'data.root'} is missing; the "
                            "cohort has no planted signal (make one with data=planted, docs/data.md)")
    mask = _cropped(path, "planted mask", grid) > 0
    table_path, labels_path = folder / "regions.csv", folder / "regions.nii.gz"
    control = (_control_mask(pd.read_csv(table_path), _cropped(labels_path, "region labels", grid))
               if table_path.is_file() and labels_path.is_file() else None)
    regions_path = folder / "planted_regions.csv"
    names = (", ".join(pd.read_csv(regions_path)["region"].astype(str))
             if regions_path.is_file() else "")
    control = None if control is None or not (control & ~mask).any() else control & ~mask
    return GroundTruth(mask, control, f"planted regions {names} ({folder})")


def _cropped(path: Path, what: str, grid) -> np.ndarray:
    import nibabel as nib

    img = nib.load(str(path))
    if tuple(img.shape[:3]) != grid.source_shape:
        raise EvaluateError(f"{path}: {what} of shape {tuple(img.shape)} does not match the "
                            f"cohort grid {grid.source_shape}")
    return grid.crop(np.asarray(img.dataobj))


def _region_mask(regions, table: pd.DataFrame, labels: np.ndarray, table_path: Path):
    """Voxels of the named regions, and their description."""
    wanted = [str(n) for n in regions]
    unknown = [n for n in wanted if n not in set(table["name"])]
    if unknown:
        raise EvaluateError(f"localisation.regions: {', '.join(unknown)} not in {table_path}")
    mask = np.isin(labels, table.loc[table["name"].isin(wanted), "index"].to_numpy())
    return mask, f"regions {', '.join(wanted)}"


def _control_mask(table: pd.DataFrame | None, labels: np.ndarray | None) -> np.ndarray | None:
    """Voxels of the regions the generator left unchanged (role ``control``), if any."""
    if table is None or labels is None or "role" not in table:
        return None
    indices = table.loc[table["role"] == "control", "index"].to_numpy()
    return np.isin(labels, indices) if len(indices) else None

"""The relevance to test: a subjects × voxels matrix in a brain mask and subjects × regions tables.

``measure=share`` divides every map by its total relevance — the normalisation of the explain run's
group maps and of its region tables' ``share`` column — so subjects whose explained logits differ
in size weigh alike; ``measure=raw`` keeps relevance as written (region ``sum``). Shares are
compositional: relevance gained in one place is a share lost everywhere else.
"""
from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from brainage.errors import InferError
from brainage.neuro.regions import OUTSIDE

REGION_COLUMN = {"share": "share", "raw": "sum"}
"""Column of the explain run's region table that holds each measure."""


@dataclass(frozen=True)
class RegionValues:
    """Relevance per tested subject and region of one atlas (regions with voxels only)."""

    atlas: str
    names: list
    ids: np.ndarray  # each region's id in the atlas's RegionLabels
    n_voxels: np.ndarray
    values: np.ndarray  # (n_subjects, n_regions)


def load_map(path, shape: tuple, affine: np.ndarray) -> np.ndarray:
    """A relevance map as float64, checked to lie on the run's grid."""
    img = nib.load(str(path))
    if tuple(img.shape[:3]) != tuple(shape) or not np.allclose(img.affine, affine, atol=1e-3):
        raise InferError(f"{path}: shape {img.shape} / affine differ from the run's first map "
                         f"{tuple(shape)}; all maps of a run must share one grid")
    return np.asarray(img.dataobj, dtype=np.float64).reshape(shape)


def _scaled(volume: np.ndarray, measure: str, path) -> np.ndarray:
    if measure == "raw":
        return volume
    total = volume.sum()
    if total == 0:
        raise InferError(f"{path}: the relevance sums to 0, so its shares are undefined; use "
                         "measure=raw")
    return volume / total


def nonzero_mask(paths, shape, affine) -> np.ndarray:
    """Voxels where any of the maps is non-zero."""
    mask = np.zeros(shape, dtype=bool)
    for path in paths:
        mask |= load_map(path, shape, affine) != 0
    return mask


def table_regions(run, atlas_labels, method: str, subject_ids, measure: str) -> RegionValues:
    """The explain run's own region table for ``method``, pivoted to subjects × regions."""
    table = run.region_table(atlas_labels.atlas)
    table = table[(table["method"] == method) & (table["region"] != OUTSIDE)]
    wide = table.pivot_table(index="subject_id", columns="region",
                             values=REGION_COLUMN[measure], aggfunc="first")
    missing = [s for s in subject_ids if s not in wide.index]
    if missing:
        raise InferError(f"{run.dir}/regions/{atlas_labels.atlas}_subjects.csv has no {method} "
                         f"rows for {', '.join(missing[:5])}")
    counts = table.groupby("region")["n_voxels"].first()
    known = {name: i for i, name in enumerate(atlas_labels.names)}
    names = [n for n in wide.columns if counts[n] > 0]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InferError(f"region {unknown[0]!r} of the explain run's table is not in atlas "
                         f"{atlas_labels.atlas} as loaded now; the atlas changed since explaining")
    return RegionValues(atlas_labels.atlas, names, np.array([known[n] for n in names]),
                        counts[names].to_numpy(), wide.loc[list(subject_ids), names].to_numpy())


def read_relevance(paths, shape, affine, mask, labels, measure: str) -> tuple:
    """One pass over the maps: masked voxels and region values of the atlases not read from tables.

    Returns
    -------
    voxels : (n, mask.sum()) array or None
    region_values : list of RegionValues (one per atlas in ``labels``)
    """
    n = len(paths)
    voxels = None if mask is None else np.empty((n, int(mask.sum())))
    sums = {lab.atlas: np.zeros((n, len(lab.names))) for lab in labels}
    for i, path in enumerate(paths):
        volume = _scaled(load_map(path, shape, affine), measure, path)
        if voxels is not None:
            voxels[i] = volume[mask]
        for lab in labels:
            sums[lab.atlas][i] = np.bincount(lab.ids.ravel(), weights=volume.ravel(),
                                             minlength=len(lab.names))
    out = []
    for lab in labels:
        counts = lab.voxel_counts()
        ids = np.flatnonzero(counts[1:] > 0) + 1  # id 0 is outside every region
        out.append(RegionValues(lab.atlas, [lab.names[i] for i in ids], ids, counts[ids],
                                sums[lab.atlas][:, ids]))
    return voxels, out


def varying_voxels(voxels: np.ndarray, mask: np.ndarray) -> tuple:
    """Drop voxels whose relevance is the same for every subject (their t is undefined)."""
    keep = np.ptp(voxels, axis=0) > 0
    refined = np.zeros_like(mask)
    refined[mask] = keep
    return voxels[:, keep], refined

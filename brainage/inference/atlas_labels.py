"""Atlas regions on the relevance maps' grid: the explain run's own atlas and any bundled one."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainage.errors import InferError
from brainage.inference.settings import EXPLAIN_ATLAS, RegionSettings
from brainage.neuro.atlases import BUNDLED_ATLASES, load_atlas
from brainage.neuro.regions import region_lookup


@dataclass(frozen=True)
class RegionLabels:
    """One atlas on the maps' grid.

    Attributes
    ----------
    atlas : str
        Its name in file names (``regions/<atlas>_inference.csv``).
    ids : ndarray of int
        Dense region id of every voxel; 0 is outside every region.
    names : list of str
        ``names[id]``; ``names[0]`` is the outside-atlas pseudo-region.
    from_table : bool
        Relevance per region is read from the explain run's region table (its own atlas);
        otherwise it is summed from the maps.
    """

    atlas: str
    ids: np.ndarray
    names: list
    from_table: bool

    def voxel_counts(self) -> np.ndarray:
        return np.bincount(self.ids.ravel(), minlength=len(self.names))


def _explain_atlas(run) -> tuple:
    """``(name or path, threshold, labels, merge_hemispheres)`` the explain run used."""
    if run.config is not None and "atlas" in run.config:
        atlas = run.config.atlas
        # Keys an older explain run's config may lack take that run's defaults.
        merge = bool(run.config.get("regions", {}).get("merge_hemispheres", False))
        return (atlas.get("path") or atlas.name, float(atlas.get("threshold", 25)),
                atlas.get("labels"), merge)
    if run.atlas_name in BUNDLED_ATLASES:
        # A run directory without .hydra/ (made by calling explain() directly): its defaults.
        return run.atlas_name, 25.0, None, False
    raise InferError(f"{run.dir}/.hydra/config.yaml is missing, so the file of the explain run's "
                     f"atlas {run.atlas_name!r} is unknown; use regions.atlases=[<bundled atlas>]")


def _labels(atlas: str, source, threshold, labels, merge, reference_img, from_table):
    try:
        img, table = load_atlas(source, target_img=reference_img, threshold=threshold,
                                labels=labels)
    except Exception as exc:  # resampling raises many kinds; the user needs the atlas named
        raise InferError(f"atlas {atlas}: {exc}") from exc
    ids, names = region_lookup(np.asarray(img.dataobj), table, merge)
    return RegionLabels(atlas, ids, names, from_table)


def _atlas_name(name: str) -> str:
    """A bundled atlas's name, or the file stem of a user atlas given by path."""
    if name.endswith((".nii", ".nii.gz")) or "/" in name:
        return Path(name).name.removesuffix(".gz").removesuffix(".nii")
    return name


def load_region_labels(run, regions: RegionSettings, reference_img) -> list:
    """The atlases of ``regions.atlases`` on ``reference_img``'s grid, each named once.

    A name is ``explain`` (the explain run's atlas, relevance from its region table), a bundled
    atlas or the path of a NIfTI label map with its ``.csv`` beside it (named by its file stem);
    for the latter two, relevance per region is summed from the maps.
    """
    out = {}
    for name in regions.atlases:
        if name == EXPLAIN_ATLAS or name == run.atlas_name:
            source, threshold, labels, merge = _explain_atlas(run)
            out.setdefault(run.atlas_name, _labels(run.atlas_name, source, threshold, labels,
                                                   merge, reference_img, True))
        elif _atlas_name(name) not in out:
            out[_atlas_name(name)] = _labels(_atlas_name(name), name, regions.atlas_threshold, None,
                                             regions.merge_hemispheres, reference_img, False)
    return list(out.values())

"""The segmented structure in the atlas and the box around it that the U-Net sees."""
from __future__ import annotations

import numpy as np

from brainage.errors import SegmentationError
from brainage.neuro.atlases import load_atlas
from brainage.neuro.grid import Grid
from brainage.neuro.nifti import grid_image


def structure_mask(atlas: str, names, grid: Grid) -> np.ndarray:
    """The union of the atlas labels ``names`` on ``grid``'s source grid (MNI space, no warp).

    Parameters
    ----------
    atlas : str
        A bundled atlas name or a label map's path (:func:`brainage.neuro.atlases.load_atlas`).
    names : sequence of str
        Label names of the atlas's table.
    grid : Grid

    Returns
    -------
    bool array shaped ``grid.source_shape``

    Raises
    ------
    SegmentationError
        When a name is not in the atlas's table or the labels cover no voxel of the grid.
    """
    source = Grid.build(grid.affine, grid.source_shape)
    img, table = load_atlas(atlas, target_img=grid_image(source))
    known = dict(zip(table["name"], table["index"]))
    missing = [n for n in names if n not in known]
    if missing:
        close = [n for n in known if any(w.lower() in n.lower() for m in missing for w in m.split("_"))]
        raise SegmentationError(f"unet: structure.labels {missing} are not in atlas {atlas!r}'s label "
                                f"table (similar names: {close[:8]})")
    mask = np.isin(np.asarray(img.dataobj), [known[n] for n in names])
    if not mask.any():
        raise SegmentationError(f"unet: structure.labels {list(names)} cover no voxel of the images' "
                                f"grid {grid.source_shape}")
    return mask


def structure_box(mask: np.ndarray, grid: Grid, shape) -> Grid:
    """The box of ``shape`` centred on the structure's bounding box, inside ``grid``'s crop.

    Parameters
    ----------
    mask : bool array on the source grid
        The structure (:func:`structure_mask`).
    grid : Grid
        The cohort's grid; the box must lie inside its crop (the cached volumes).
    shape : tuple of int

    Returns
    -------
    Grid
        The source grid with the box as its crop.

    Raises
    ------
    SegmentationError
        When the box cuts off part of the structure or leaves the cohort's crop.
    """
    idx = np.argwhere(mask)
    low, high = idx.min(axis=0), idx.max(axis=0) + 1
    offset = np.floor((low + high - np.asarray(shape)) / 2).astype(int)
    extent = (high - low).tolist()
    if any(s < e for s, e in zip(shape, extent)):
        raise SegmentationError(f"unet: crop.shape={list(shape)} cuts off part of the structure, whose "
                                f"atlas bounding box is {extent} voxels; use at least that")
    start, stop = np.asarray(grid.crop_offset), np.asarray(grid.crop_offset) + grid.crop_shape
    if np.any(offset < start) or np.any(offset + shape > stop):
        raise SegmentationError(f"unet: the box {list(shape)} at source voxel {offset.tolist()} around "
                                f"the structure leaves the cohort's crop (offset {list(grid.crop_offset)},"
                                f" shape {list(grid.crop_shape)}); widen data.crop_shape")
    return Grid.build(grid.affine, grid.source_shape, tuple(int(s) for s in shape), tuple(offset))


def box_within_crop(box: Grid, grid: Grid) -> tuple:
    """Slices that cut ``box`` out of volumes cropped to ``grid``'s crop."""
    return tuple(slice(b - g, b - g + s)
                 for b, g, s in zip(box.crop_offset, grid.crop_offset, box.crop_shape))

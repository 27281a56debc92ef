"""What the baselines see of a volume: block means (a downsampled volume) or atlas-region means.

Both are read in one pass over the cohort's (memory-mapped) volumes, a few subjects at a time.
"""
from __future__ import annotations

import logging

import numpy as np

from brainage.errors import AtlasError, TrainError
from brainage.neuro.atlases import load_atlas

log = logging.getLogger(__name__)

CHUNK = 16  # subjects read at once: bounded memory on the full grid


def block_means(volumes: np.ndarray, size: int) -> np.ndarray:
    """Means over ``size``-voxel cubes of each volume of ``volumes`` (n, X, Y, Z), flattened.

    Edge blocks that the grid does not fill are averaged over the voxels they hold (nothing is
    cut off): a 100 x 124 x 103 grid with ``size`` 4 gives 25 x 31 x 26 means.
    """
    volumes = np.asarray(volumes, dtype=np.float32)
    shape = volumes.shape[1:]
    pad = [(0, 0)] + [(0, -n % size) for n in shape]
    blocks = tuple(-(-n // size) for n in shape)

    def block_sums(x):
        x = np.pad(x, pad) if any(after for _, after in pad) else x
        x = x.reshape(len(x), blocks[0], size, blocks[1], size, blocks[2], size)
        return x.sum(axis=(2, 4, 6), dtype=np.float64)

    counts = block_sums(np.ones((1,) + shape, np.float32))
    return (block_sums(volumes) / counts).reshape(len(volumes), -1)


class RegionMeans:
    """Mean grey matter per atlas region of volumes on one grid.

    Parameters
    ----------
    labels : int array (X, Y, Z)
        The atlas on the volumes' grid; 0 is background.
    names : dict
        ``{label: region name}``; labels without voxels on the grid are dropped.
    """

    def __init__(self, labels: np.ndarray, names: dict):
        from scipy import sparse

        flat = np.asarray(labels).ravel().astype(np.int64)
        present = [int(k) for k in np.unique(flat) if k != 0]
        if not present:
            raise TrainError("trainer.baselines.atlas: no atlas region overlaps the cohort's grid")
        self.labels = np.array(present, dtype=np.int64)
        self.names = [str(names.get(k, f"label_{k}")) for k in present]
        column = np.full(int(flat.max()) + 1, -1)
        column[self.labels] = np.arange(len(present))
        voxels = np.flatnonzero(flat)
        regions = column[flat[voxels]]
        counts = np.bincount(regions, minlength=len(present)).astype(np.float32)
        # (voxels of the grid x regions): flattened volumes times this are their region means.
        self._averaging = sparse.csr_matrix((1.0 / counts[regions], (voxels, regions)),
                                            shape=(flat.size, len(present)), dtype=np.float32)

    def __call__(self, volumes: np.ndarray) -> np.ndarray:
        flat = np.asarray(volumes, dtype=np.float32).reshape(len(volumes), -1)
        return np.asarray(flat @ self._averaging, dtype=np.float64)


def atlas_on_grid(atlas: str, grid) -> RegionMeans:
    """``atlas`` (a bundled name or a label-map path) resampled to the cohort's cropped grid.

    Raises
    ------
    TrainError
        The atlas cannot be read, or none of its regions lies on the grid.
    """
    import nibabel as nib


    target = nib.Nifti1Image(np.zeros(grid.crop_shape, np.uint8), grid.cropped_affine)
    try:
        img, table = load_atlas(atlas, target_img=target)
    except AtlasError as err:
        raise TrainError(f"trainer.baselines.atlas={atlas}: {err}") from err
    names = dict(zip(table["index"].astype(int), table["name"]))
    return RegionMeans(np.asarray(img.dataobj), names)


def feature_tables(volumes, kinds, block_size: int, region_means: RegionMeans | None) -> dict:
    """``{kind: (n, features) array}`` for ``kinds`` among ``blocks`` and ``regions``, every row
    of ``volumes`` read once."""
    parts = {kind: [] for kind in kinds}
    for start in range(0, len(volumes), CHUNK):
        chunk = np.asarray(volumes[start:start + CHUNK], dtype=np.float32)
        if "blocks" in parts:
            parts["blocks"].append(block_means(chunk, block_size))
        if "regions" in parts:
            parts["regions"].append(region_means(chunk))
    return {kind: np.concatenate(rows) for kind, rows in parts.items()}

"""The explained subjects' own data, found through the training run's data config.

The participants table and the GM images are read with :mod:`brainage.data.io` and the data
format of :mod:`brainage.data.formats` (the data stage's readers), from the training run's
config with the explain run's and the user's ``data`` overrides on top (e.g. a moved
``data.root``), as :func:`brainage.trained.run_config` gives it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from brainage.config_values import ConfigReader
from brainage.data import io
from brainage.data.formats import read_format
from brainage.errors import InferError


def _source(cfg):
    """The data config's format with its keys (:mod:`brainage.data.formats`)."""
    # Configs of runs older than data.format knew only NIfTI images.
    return read_format(ConfigReader(cfg.data, "data"), default="nifti")


def participants(cfg) -> pd.DataFrame:
    """The participants table (``subject_id``, ``age`` and, where present, ``sex``, ``site``)."""
    return io.read_participants(cfg.data.participants, require_id=_source(cfg).ids_in_table)


def _reader(cfg):
    """``read(subject_id) -> (volume, affine or None, source)`` for the data config's format."""
    source = _source(cfg)
    # A format without ids in its table finds a subject by its row; the others by its id alone.
    rows = ({} if source.ids_in_table else
            {sid: i for i, sid in enumerate(participants(cfg)["subject_id"])})

    def read(sid):
        if not source.ids_in_table and sid not in rows:
            raise InferError(f"{sid}: not in the ages table {cfg.data.participants}")
        located = source.locate(sid, rows.get(sid))
        volume, affine = source.open_volume(located)
        return volume, affine, located.source
    return read


def gm_images(cfg, subject_ids, shape: tuple, affine: np.ndarray):
    """Yield each subject's GM volume (float32), checked to lie on the maps' grid.

    Parameters
    ----------
    cfg : DictConfig
        The training run's config with its data overrides (:func:`brainage.trained.run_config`).
    subject_ids : sequence of str
    shape, affine :
        The relevance maps' grid; every GM image must share it (maps are written on it).
    """
    read = _reader(cfg)
    for sid in subject_ids:
        volume, own_affine, source = read(str(sid))
        if volume.shape != tuple(shape):
            raise InferError(f"{sid}: GM image {source} has shape {volume.shape}; the relevance "
                             f"maps have {tuple(shape)}")
        if own_affine is not None and not np.allclose(own_affine, affine, atol=1e-3):
            raise InferError(f"{sid}: GM image {source} is not on the relevance maps' grid "
                             f"(affine {np.round(own_affine[:3], 3).tolist()})")
        yield volume

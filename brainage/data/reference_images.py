"""Reference brains for reference-based attribution, named in a method's config.

DeepLIFT and DTD rooted at a reference explain ``f(x) − f(x_ref)``. A reference users recognise is
an image of the cohort, not a number, so a method's ``reference`` may name one:

==================  ==========================================================================
``training_mean``   the mean cropped GM image of the training split
``youngest_mean``   the mean image of the training split's youngest bin: the map then says what
                    makes this brain look older than a young brain
``zeros``           no grey matter anywhere (as ``0.0``)
==================  ==========================================================================

Only the training split is averaged: the subjects being explained (test split by default) never
shape their own reference.
"""
from __future__ import annotations

import numpy as np

from brainage.errors import DataError

NAMED_REFERENCES = ("training_mean", "youngest_mean", "zeros")
# The method parameters that may name one: DeepLIFT's and reference DTD's ``reference``,
# integrated gradients' ``baseline``.
REFERENCE_KEYS = ("reference", "baseline")


def mean_image(prep, rows: np.ndarray, batch: int = 16) -> np.ndarray:
    """Mean of the cropped volumes ``rows`` of ``prep`` (float32, ``X × Y × Z``), read in batches
    so a memory-mapped cohort is never loaded whole."""
    rows = np.asarray(rows)
    total = np.zeros(prep.volumes.shape[1:], dtype=np.float64)
    for i in range(0, len(rows), batch):
        total += np.asarray(prep.volumes[rows[i:i + batch]], dtype=np.float64).sum(axis=0)
    return (total / max(len(rows), 1)).astype(np.float32)


def reference_image(prep, name: str) -> np.ndarray:
    """The named reference as one input, ``X × Y × Z × 1`` float32."""
    train = prep.indices("train")
    if name == "training_mean":
        image = mean_image(prep, train)
    elif name == "youngest_mean":
        bins = prep.labels("train")
        if not len(bins):
            raise DataError("reference youngest_mean: the training split is empty")
        image = mean_image(prep, train[bins == bins.min()])
    elif name == "zeros":
        image = np.zeros(prep.volumes.shape[1:], dtype=np.float32)
    else:
        raise DataError(f"reference {name!r}; expected a number or one of "
                        f"{', '.join(NAMED_REFERENCES)}")
    return image[..., None]


def with_reference_images(methods: dict, prep) -> dict:
    """``methods`` (``{name: params}``) with every named ``reference`` (or integrated gradients'
    ``baseline``) replaced by its image.

    Each named reference is computed once however many methods use it; numbers and arrays are
    left as they are.
    """
    images, resolved = {}, {}
    for method, params in methods.items():
        for key in REFERENCE_KEYS:
            name = params.get(key)
            if isinstance(name, str):
                if name not in images:
                    images[name] = reference_image(prep, name)
                params = {**params, key: images[name]}
        resolved[method] = params
    return resolved

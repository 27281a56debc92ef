"""The digits: scikit-learn's bundled 8×8 digits upsampled to MNIST's 28×28, and their split.

MNIST itself cannot be downloaded here, so the seed's experiment runs on scikit-learn's
``load_digits`` (1,797 handwritten digits, grey levels 0–16), upsampled by linear interpolation
and scaled to [0, 1] — blurrier and ~40× fewer than MNIST.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from brainage.errors import BrainageError

SOURCE_NOTE = ("scikit-learn load_digits (8x8, 0-16) upsampled to {size}x{size} with "
               "scipy.ndimage.zoom (linear, order 1), scaled to [0, 1]; MNIST is not available offline")


def source_note(size: int) -> str:
    """Where the digits come from and how they were made, for figures and ``digits.json``."""
    return SOURCE_NOTE.format(size=size)


def load_digits_upsampled(size: int = 28, limit: int | None = None, seed: int = 0):
    """scikit-learn's 8×8 digits upsampled to ``size × size`` in [0, 1].

    Parameters
    ----------
    size : int
        Edge of the upsampled images (``scipy.ndimage.zoom``, order 1).
    limit : int or None
        Keep only this many digits, drawn at random with ``seed`` (in their original order).
    seed : int

    Returns
    -------
    x : float32 array (n, size, size, 1)
    y : int64 array (n,)
    """
    from scipy import ndimage
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, y = digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64)
    if limit is not None and int(limit) < len(y):
        keep = np.sort(np.random.default_rng(seed).choice(len(y), int(limit), replace=False))
        images, y = images[keep], y[keep]
    factor = size / images.shape[1]
    x = ndimage.zoom(images, (1.0, factor, factor), order=1)
    return np.clip(x, 0.0, 1.0)[..., None].astype(np.float32), y


class DigitsSplit(NamedTuple):
    """Training and test digits (images ``(n, size, size, 1)``, labels ``(n,)``)."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def split_digits(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> DigitsSplit:
    """A split stratified by digit.

    Raises
    ------
    BrainageError
        When the digits are too few to put every digit on both sides (``data.limit`` too small).
    """
    from sklearn.model_selection import train_test_split

    try:
        parts = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    except ValueError as err:
        raise BrainageError(f"digits: cannot split {len(y)} digits with data.test_fraction={test_fraction} "
                            f"stratified by digit ({err}); raise data.limit") from None
    return DigitsSplit(*parts)

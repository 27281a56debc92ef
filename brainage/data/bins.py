"""Age bins: assignment, labels, balancing by downsampling or class weights, stratified splits."""
from __future__ import annotations

import numpy as np

from brainage.errors import DataError

BALANCE_METHODS = ("downsample", "none", "class_weights")


def check_bin_edges(edges) -> np.ndarray:
    """``edges`` as a float array; fewer than 3 or non-increasing edges are a DataError."""
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or len(edges) < 3 or np.any(np.diff(edges) <= 0):
        raise DataError(f"data.bin_edges={edges.tolist()}; expected at least 3 increasing edges "
                        "(two or more bins), e.g. [10, 40, 70, 101]")
    return edges


def assign_bins(ages, edges) -> np.ndarray:
    """Bin index of each age for half-open bins ``[edges[k], edges[k+1])``; -1 outside."""
    edges = check_bin_edges(edges)
    ages = np.asarray(ages, dtype=float)
    bins = np.searchsorted(edges, ages, side="right") - 1
    bins[(ages < edges[0]) | (ages >= edges[-1]) | ~np.isfinite(ages)] = -1
    return bins


def ages_to_bins(ages, edges) -> np.ndarray:
    """Predicted ages as bins of ``edges``; ages beyond the outer edges go to the outer bins."""
    edges = np.asarray(edges, dtype=float)
    clipped = np.clip(np.asarray(ages, dtype=float), edges[0], np.nextafter(edges[-1], -np.inf))
    return assign_bins(clipped, edges)


def bin_labels(bin_edges) -> list:
    """``[10, 40, 70, 101]`` -> ``['10-39', '40-69', '70-100']`` (integer ages), else ``[a, b)``."""
    edges = [float(e) for e in bin_edges]
    if all(e.is_integer() for e in edges):
        return [f"{int(lo)}-{int(hi) - 1}" for lo, hi in zip(edges[:-1], edges[1:])]
    return [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges[:-1], edges[1:])]


def balance_bins(bins, method: str, seed: int = 0):
    """Rows to keep and optional class weights.

    ``downsample`` keeps a seeded random subset of every bin the size of the smallest (seed 000);
    ``none`` keeps all; ``class_weights`` keeps all and weights bin k by ``n / (n_bins · n_k)``.

    Returns
    -------
    keep : array of int (sorted row indices)
    class_weights : dict or None
    """
    if method not in BALANCE_METHODS:
        raise DataError(f"data.balance={method!r}; expected one of {BALANCE_METHODS}")
    bins = np.asarray(bins)
    labels, counts = np.unique(bins, return_counts=True)
    if method == "none":
        return np.arange(len(bins)), None
    if method == "class_weights":
        weights = {int(k): float(len(bins) / (len(labels) * c)) for k, c in zip(labels, counts)}
        return np.arange(len(bins)), weights
    rng = np.random.default_rng(seed)
    smallest = counts.min()
    keep = [rng.choice(np.flatnonzero(bins == k), size=smallest, replace=False) for k in labels]
    return np.sort(np.concatenate(keep)), None


def check_split_fractions(fractions) -> np.ndarray:
    """``fractions`` as a float array; anything but three (train > 0) summing to 1 is a DataError."""
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or np.any(fractions < 0) or fractions[0] <= 0 \
            or not np.isclose(fractions.sum(), 1.0):
        raise DataError(f"data.split={fractions.tolist()}; expected three fractions "
                        "(train, val, test) summing to 1, e.g. [0.7, 0.15, 0.15]")
    return fractions


def split_sizes(n: int, fractions) -> tuple[int, int]:
    """Validation and test subjects of a bin of ``n`` (at least one where the fraction is > 0)."""
    n_val = max(int(round(n * fractions[1])), 1) if fractions[1] > 0 else 0
    n_test = max(int(round(n * fractions[2])), 1) if fractions[2] > 0 else 0
    return n_val, n_test


def bin_too_small(k: int, n: int, fractions, edges=None, why: str = "") -> str:
    """The message for bin ``k`` holding too few subjects (``n``) for the split."""
    fractions = np.asarray(fractions, dtype=float)
    label = f"bin {k}" + (f" (ages {bin_labels(edges)[k]})" if edges is not None else "")
    need = int((fractions > 0).sum())
    return (f"{label} has {n} subject(s){why}; the split {fractions.tolist()} needs at least "
            f"{need} per bin — add subjects or change data.split/bin_edges")


def stratified_split(bins, fractions, seed: int = 0, edges=None) -> np.ndarray:
    """Seeded split label ("train"/"val"/"test") per row, stratified by bin.

    Each bin is shuffled and cut by the fractions (rounded, at least one subject in every split
    whose fraction is positive); a bin too small for that is an error naming it.
    """
    fractions = check_split_fractions(fractions)
    bins = np.asarray(bins)
    out = np.empty(len(bins), dtype=object)
    rng = np.random.default_rng(seed)
    for k in np.unique(bins):
        rows = rng.permutation(np.flatnonzero(bins == k))
        n = len(rows)
        n_val, n_test = split_sizes(n, fractions)
        if n - n_val - n_test < 1:
            raise DataError(bin_too_small(k, n, fractions, edges))
        out[rows[:n_test]] = "test"
        out[rows[n_test:n_test + n_val]] = "val"
        out[rows[n_test + n_val:]] = "train"
    return out

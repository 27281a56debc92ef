"""Region perturbation (Samek et al. 2017, IEEE TNNLS 28:2660): does the map rank what the network uses?

Tile the input into patches, remove the most relevant patches first (most-relevant-first, MoRF) by
replacing them with a baseline, and track the explained logit. The area over the perturbation curve,
``AOPC = 1/(L+1) · Σ_{k=0..L} (f(x) − f(x_MoRF^(k)))``, is larger when the map ranks the patches the
network really uses first. A random map is the floor.

Maps and inputs are channels-last arrays ``(batch, *spatial, channels)`` with any number of spatial
axes, so everything here works for 2-D digits and 3-D brains alike.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

BASELINES = ("zeros", "mean", "blur")


def patch_labels(spatial_shape: Sequence[int], patch: int) -> tuple[np.ndarray, int]:
    """Patch index of every voxel when ``spatial_shape`` is tiled by cubes of edge ``patch``.

    Patches at the far edges are cut short where the shape is not a multiple of ``patch``.

    Returns
    -------
    labels : ndarray of int64, shape ``spatial_shape``
    n_patches : int
    """
    patch = int(patch)
    if patch < 1:
        raise ValueError(f"patch size must be ≥ 1 voxel, got {patch}")
    spatial_shape = tuple(int(s) for s in spatial_shape)
    counts = [-(-s // patch) for s in spatial_shape]
    coords = np.meshgrid(*[np.arange(s) // patch for s in spatial_shape], indexing="ij")
    labels = np.ravel_multi_index(tuple(coords), counts)
    return labels.astype(np.int64), int(np.prod(counts))


def patch_relevance(maps: np.ndarray, labels: np.ndarray, n_patches: int) -> np.ndarray:
    """Summed relevance per patch, ``(batch, n_patches)``; channels are summed too."""
    maps = np.asarray(maps, dtype=np.float64)
    spatial = maps.shape[1:1 + labels.ndim]
    if spatial != labels.shape:
        raise ValueError(f"maps of spatial shape {spatial} do not match the patch grid {labels.shape}")
    flat = maps.reshape(maps.shape[0], labels.size, -1).sum(axis=-1)
    offsets = (np.arange(maps.shape[0]) * n_patches)[:, None]
    sums = np.bincount((labels.ravel()[None] + offsets).ravel(), weights=flat.ravel(),
                       minlength=maps.shape[0] * n_patches)
    return sums.reshape(maps.shape[0], n_patches)


def make_baseline(x: np.ndarray, kind: str = "zeros", mean_image: np.ndarray | None = None,
                  blur_sigma: float = 4.0) -> np.ndarray:
    """What a removed patch is replaced by, shaped like ``x`` (``(batch, *spatial, channels)``).

    Parameters
    ----------
    kind : {"zeros", "mean", "blur"}
        ``zeros``: no grey matter; ``mean``: ``mean_image`` (e.g. the training cohort's mean,
        ``(*spatial, channels)`` or ``(*spatial)``); ``blur``: each input smoothed by a Gaussian of
        ``blur_sigma`` voxels (the local average, so only fine structure is removed).
    """
    x = np.asarray(x, dtype=np.float32)
    if kind == "zeros":
        return np.zeros_like(x)
    if kind == "mean":
        if mean_image is None:
            raise ValueError("baseline 'mean' needs the cohort mean image")
        mean_image = np.asarray(mean_image, dtype=np.float32)
        if mean_image.ndim == x.ndim - 2:
            mean_image = mean_image[..., None]
        if mean_image.shape != x.shape[1:]:
            raise ValueError(f"mean image of shape {mean_image.shape} does not match inputs "
                             f"{x.shape[1:]}")
        return np.broadcast_to(mean_image, x.shape).astype(np.float32)
    if kind == "blur":
        from scipy import ndimage

        sigma = (0.0,) + (float(blur_sigma),) * (x.ndim - 2) + (0.0,)
        return ndimage.gaussian_filter(x, sigma=sigma).astype(np.float32)
    raise ValueError(f"unknown perturbation baseline {kind!r}; expected one of {BASELINES}")


def random_maps(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """Gaussian noise maps: the floor every explanation method must beat."""
    return np.random.default_rng(seed).standard_normal(tuple(shape)).astype(np.float32)


def logit_function(model, batch_size: int = 8) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x) -> logits`` for a Keras model, in batches of at most ``batch_size``.

    The model's inference pass is compiled once (``tf.function`` / ``jax.jit``, as the relevance
    engine compiles) and reused for every call: no ``model.predict`` machinery per call, and at
    most two traced shapes (full batches and the last, shorter one).
    """
    from keras import ops

    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import compile_function

    forward = compile_function(lambda v: model(v, training=False))

    def predict(x):
        x = np.asarray(x, dtype=np.float32)
        return np.concatenate([np.asarray(ops.convert_to_numpy(forward(x[i:i + batch_size])))
                               for i in range(0, len(x), batch_size)])

    return predict


@dataclass
class PerturbationResult:
    """Region perturbation of a batch (MoRF order).

    Attributes
    ----------
    logits : ndarray (batch, steps + 1)
        The explained logit after removing ``k · patches_per_step`` patches (column 0: intact input).
    drops : ndarray (batch, steps + 1)
        ``logits[:, :1] − logits``.
    fraction_removed : ndarray (steps + 1,)
        Share of the input's voxels replaced at each step (patches at the edges are smaller).
    aopc : ndarray (batch,)
        ``mean_k drops[:, k]`` over ``k = 0..L`` (Samek et al. 2017, eq. 12).
    """

    logits: np.ndarray
    drops: np.ndarray
    fraction_removed: np.ndarray
    aopc: np.ndarray


@dataclass(frozen=True)
class PatchTiling:
    """The patches of a spatial grid and their voxels, grouped by patch (built once per grid).

    ``voxels[starts[p]:starts[p + 1]]`` are the flat voxel indices of patch ``p``, so the voxels of
    any set of patches are gathered without scanning the grid.
    """

    labels: np.ndarray
    n_patches: int
    voxels: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, spatial_shape: Sequence[int], patch: int) -> "PatchTiling":
        labels, n_patches = patch_labels(spatial_shape, patch)
        flat = labels.ravel()
        voxels = np.argsort(flat, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=n_patches))])
        return cls(labels, n_patches, voxels, starts)

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.starts)

    def removal_order(self, scores: np.ndarray, n_removed: int) -> tuple[np.ndarray, np.ndarray]:
        """The voxels of the ``n_removed`` highest-scoring patches, in removal order, and the
        number of voxels removed after each patch (ties keep patch order)."""
        order = np.argsort(-scores, kind="stable")[:n_removed]
        voxels = np.concatenate([self.voxels[self.starts[p]:self.starts[p + 1]] for p in order]
                                + [np.empty(0, np.int64)])
        return voxels, np.concatenate([[0], np.cumsum(self.sizes[order])])


def region_perturbation(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, maps: np.ndarray,
                        classes: Sequence[int], baseline: np.ndarray, patch: int = 8, steps: int = 20,
                        patches_per_step: int = 1, batch_size: int | None = None) -> PerturbationResult:
    """Most-relevant-first region perturbation and AOPC (Samek et al. 2017).

    Patches are ranked by summed relevance (ties keep patch order); at step ``k`` the top
    ``k · patches_per_step`` patches of each input hold the baseline. The ``batch × (steps + 1)``
    perturbed inputs are built in turn into one reused buffer of ``batch_size`` volumes, across
    subjects and steps: each is a copy of its input with the removed patches' voxels overwritten
    from the baseline (gathered from a precomputed patch → voxels index, no mask over the grid).

    Parameters
    ----------
    predict : callable
        ``predict(inputs) -> logits (n, n_classes)``, e.g. :func:`logit_function`; called once per
        filled buffer.
    x, maps : ndarray (batch, *spatial, channels)
        Inputs and their relevance maps.
    classes : sequence of int
        The explained class of every input (its logit is tracked).
    baseline : ndarray, shaped like ``x``
        Replacement values (:func:`make_baseline`).
    patch : int
        Patch edge in voxels.
    steps : int
        ``L``, the number of perturbation steps.
    patches_per_step : int
        Patches removed per step.
    batch_size : int, optional
        Perturbed inputs per ``predict`` call; default ``steps + 1`` (one subject per call).
    """
    x = np.asarray(x, dtype=np.float32)
    maps = np.asarray(maps)
    baseline = np.broadcast_to(np.asarray(baseline, dtype=np.float32), x.shape)
    classes = _checked_request(x, maps, classes, steps, patches_per_step)
    tiling = PatchTiling.of(x.shape[1:-1], patch)
    removed = np.arange(int(steps) + 1) * int(patches_per_step)
    if removed[-1] > tiling.n_patches:
        raise ValueError(f"{steps} steps of {patches_per_step} patches remove {removed[-1]} patches "
                         f"but the input has only {tiling.n_patches} patches of {patch} voxels")
    scores = patch_relevance(maps, tiling.labels, tiling.n_patches)
    plans = [tiling.removal_order(s, int(removed[-1])) for s in scores]
    outputs = _perturbed_outputs(predict, x, baseline, plans, removed,
                                 int(batch_size or removed.size))
    logits = np.take_along_axis(outputs, classes[:, None, None], axis=2)[..., 0]
    counts = np.stack([cum[removed] for _, cum in plans])
    drops = logits[:, :1] - logits
    return PerturbationResult(logits, drops, (counts / tiling.labels.size).mean(axis=0),
                              drops.mean(axis=1))


def _checked_request(x, maps, classes, steps, patches_per_step) -> np.ndarray:
    """The classes as int64, after checking shapes and step counts."""
    if maps.shape != x.shape:
        raise ValueError(f"maps of shape {maps.shape} do not match inputs {x.shape}")
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if classes.shape[0] != x.shape[0]:
        raise ValueError(f"{classes.shape[0]} classes for {x.shape[0]} inputs")
    if int(steps) < 1 or int(patches_per_step) < 1:
        raise ValueError(f"steps={steps} and patches_per_step={patches_per_step} must be ≥ 1")
    return classes


def _perturbed_outputs(predict, x, baseline, plans, removed, batch_size) -> np.ndarray:
    """Logits ``(batch, steps + 1, n_classes)`` of every perturbed input, filled batch by batch."""
    jobs = [(b, k) for b in range(len(x)) for k in range(removed.size)]
    buffer = np.empty((min(batch_size, len(jobs)), *x.shape[1:]), dtype=np.float32)
    n_voxels = int(np.prod(x.shape[1:-1]))
    rows = []
    for first in range(0, len(jobs), batch_size):
        chunk = jobs[first:first + batch_size]
        for slot, (b, k) in enumerate(chunk):
            voxels, cum = plans[b]
            gone = voxels[:cum[removed[k]]]
            buffer[slot] = x[b]
            target = buffer[slot].reshape(n_voxels, -1)  # a view: written in place
            target[gone] = baseline[b].reshape(n_voxels, -1)[gone]
        rows.append(np.asarray(predict(buffer[:len(chunk)]), dtype=np.float64))
    return np.concatenate(rows).reshape(len(x), removed.size, -1)

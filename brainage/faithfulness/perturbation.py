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
    :func:`region_perturbations` scores several maps of the same inputs at once.

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
    x, maps = np.asarray(x, dtype=np.float32), np.asarray(maps)
    classes = _checked_request(x, maps, classes, steps, patches_per_step)
    labels, n_patches = patch_labels(x.shape[1:-1], patch)
    return region_perturbations(predict, x, [(patch_relevance(maps, labels, n_patches), classes)],
                                baseline, patch, steps, patches_per_step, batch_size)[0]


def region_perturbations(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                         requests: Sequence, baseline: np.ndarray, patch: int = 8, steps: int = 20,
                         patches_per_step: int = 1, batch_size: int | None = None,
                         intact: np.ndarray | None = None,
                         progress: Callable[[int], object] | None = None) -> list:
    """:func:`region_perturbation` of several maps of the same inputs (methods, target modes) at
    once, every distinct perturbed input predicted once.

    The perturbed inputs of every request, subject and step are filled into the same buffer in
    turn (request by request, subject by subject, step by step), so ``predict`` sees full batches
    across requests. An input is predicted once however many requests reach it: the intact inputs
    (step 0) once per subject, and a step whose removed patches are the same set for two requests
    (maps that rank the same patches first) once. The logits are the same as scoring each request
    on its own (up to the round-off of a different batch composition).

    Parameters
    ----------
    requests : sequence of (scores, classes)
        Per scored map (a method in a target mode): its summed relevance per patch, ``(batch,
        n_patches)`` (:func:`patch_relevance` on :func:`patch_labels` of ``patch``), and the
        explained class of every input.
    intact : ndarray (batch, n_classes), optional
        ``predict(x)`` when already known: step 0 is taken from it instead of predicted again.
    progress : callable, optional
        ``progress(n, request, total)`` after each ``predict`` call: ``n`` inputs predicted, the
        (first) request they belong to, ``total`` inputs to predict in all (a progress bar).
    Other parameters as in :func:`region_perturbation`.

    Returns
    -------
    list of PerturbationResult, one per request.
    """
    x = np.asarray(x, dtype=np.float32)
    baseline = np.broadcast_to(np.asarray(baseline, dtype=np.float32), x.shape)
    tiling = PatchTiling.of(x.shape[1:-1], patch)
    removed = np.arange(int(steps) + 1) * int(patches_per_step)
    if removed[-1] > tiling.n_patches:
        raise ValueError(f"{steps} steps of {patches_per_step} patches remove {removed[-1]} patches "
                         f"but the input has only {tiling.n_patches} patches of {patch} voxels")
    checked = [_checked_scores(x, scores, classes, tiling.n_patches, steps, patches_per_step)
               for scores, classes in requests]
    orders = [np.argsort(-scores, axis=1, kind="stable")[:, :removed[-1]]
              for scores, _ in checked]
    jobs, slots, owners = _distinct_inputs(orders, removed)
    outputs = _perturbed_outputs(predict, x, baseline, tiling, jobs,
                                 int(batch_size or removed.size), intact,
                                 progress and (lambda n, j, total: progress(n, owners[j], total)))
    results = []
    for order, (_, classes), where in zip(orders, checked, slots):
        logits = np.take_along_axis(outputs[where], classes[:, None, None], axis=2)[..., 0]
        cum = np.concatenate([np.zeros((len(order), 1), np.int64),
                              np.cumsum(tiling.sizes[order], axis=1)], axis=1)
        drops = logits[:, :1] - logits
        results.append(PerturbationResult(logits, drops,
                                          (cum[:, removed] / tiling.labels.size).mean(axis=0),
                                          drops.mean(axis=1)))
    return results


def _checked_scores(x, scores, classes, n_patches, steps, patches_per_step) -> tuple:
    """``(scores, classes)`` of one request, checked against the inputs and the patch grid."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (x.shape[0], n_patches):
        raise ValueError(f"patch scores of shape {scores.shape} do not match {x.shape[0]} inputs "
                         f"of {n_patches} patches")
    if int(steps) < 1 or int(patches_per_step) < 1:
        raise ValueError(f"steps={steps} and patches_per_step={patches_per_step} must be ≥ 1")
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if classes.shape[0] != x.shape[0]:
        raise ValueError(f"{classes.shape[0]} classes for {x.shape[0]} inputs")
    return scores, classes


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


def _distinct_inputs(orders: list, removed: np.ndarray) -> tuple[list, list]:
    """The distinct perturbed inputs of every request, subject and step, and where each lands.

    Returns ``jobs`` (``(subject, removed patches)`` in first-seen order), per request an int
    array ``(batch, steps + 1)`` of job indices, and the request that first needed each job.
    """
    index: dict = {}
    jobs, slots, owners = [], [], []
    for r, order in enumerate(orders):
        where = np.empty((len(order), removed.size), dtype=np.int64)
        for b, ranked in enumerate(order):
            for k, n in enumerate(removed):
                key = (b, np.sort(ranked[:n]).tobytes())
                if key not in index:
                    index[key] = len(jobs)
                    jobs.append((b, ranked[:n]))
                    owners.append(r)
                where[b, k] = index[key]
        slots.append(where)
    return jobs, slots, owners


def _perturbed_outputs(predict, x, baseline, tiling, jobs, batch_size, intact=None,
                       progress=None) -> np.ndarray:
    """Outputs ``(len(jobs), n_classes)`` of every perturbed input, filled batch by batch (the
    intact inputs taken from ``intact`` where given)."""
    todo = [j for j, (_, patches) in enumerate(jobs) if intact is None or len(patches)]
    outputs = None if intact is None else np.empty((len(jobs), intact.shape[1]), np.float64)
    buffer = np.empty((min(batch_size, max(len(todo), 1)), *x.shape[1:]), dtype=np.float32)
    n_voxels = int(np.prod(x.shape[1:-1]))
    for first in range(0, len(todo), batch_size):
        chunk = todo[first:first + batch_size]
        for slot, j in enumerate(chunk):
            b, patches = jobs[j]
            gone = (np.concatenate([tiling.voxels[tiling.starts[p]:tiling.starts[p + 1]]
                                    for p in patches]) if len(patches) else np.empty(0, np.int64))
            buffer[slot] = x[b]
            target = buffer[slot].reshape(n_voxels, -1)  # a view: written in place
            target[gone] = baseline[b].reshape(n_voxels, -1)[gone]
        out = np.asarray(predict(buffer[:len(chunk)]), dtype=np.float64)
        if outputs is None:
            outputs = np.empty((len(jobs), out.shape[1]), np.float64)
        outputs[chunk] = out
        if progress is not None:
            progress(len(chunk), chunk[-1], len(todo))
    if intact is not None:
        for j, (b, patches) in enumerate(jobs):
            if not len(patches):
                outputs[j] = intact[b]
    return outputs

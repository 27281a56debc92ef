"""Faithfulness of relevance maps: plain functions on arrays and Keras models.

Three families of checks, each usable without Hydra or the pipeline (``brainage.evaluate`` runs them
over a training run):

* **Region perturbation** (Samek et al. 2017, IEEE TNNLS 28:2660, "Evaluating the visualization of
  what a deep neural network has learned"): tile the input into patches, remove the most relevant
  patches first (most-relevant-first, MoRF) by replacing them with a baseline, and track the explained
  logit. The area over the perturbation curve,
  ``AOPC = 1/(L+1) · Σ_{k=0..L} (f(x) − f(x_MoRF^(k)))``, is larger when the map ranks the patches
  the network really uses first. A random map is the floor.
* **Cascading parameter randomisation** (Adebayo et al. 2018, NeurIPS, "Sanity checks for saliency
  maps"): re-initialise the weights from the top layer down, re-explain after each step and compare
  with the original map (Spearman rank correlation and SSIM of the absolute maps, optionally signed).
  A map that stays the same while the network it claims to explain is destroyed fails the check.
* **Ground-truth localisation** (synthetic cohort): the share of positive relevance inside the voxels
  the generator aged divided by their share of the brain ("relevance mass ratio", 1 = uniform), and the
  ROC AUC of voxel relevance against that mask.

Maps and inputs are channels-last arrays ``(batch, *spatial, channels)`` with any number of spatial
axes, so everything here works for 2-D digits and 3-D brains alike.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

BASELINES = ("zeros", "mean", "blur")


# --------------------------------------------------------------------------------------------------
# Region perturbation


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
    """``predict(x) -> logits`` for a Keras model, in batches of ``batch_size`` (compiled once)."""

    def predict(x):
        x = np.asarray(x, dtype=np.float32)
        return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + batch_size]))
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


def region_perturbation(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, maps: np.ndarray,
                        classes: Sequence[int], baseline: np.ndarray, patch: int = 8, steps: int = 20,
                        patches_per_step: int = 1) -> PerturbationResult:
    """Most-relevant-first region perturbation and AOPC (Samek et al. 2017).

    Patches are ranked by summed relevance (ties keep patch order); at step ``k`` the top
    ``k · patches_per_step`` patches of each input hold the baseline. All ``steps + 1`` inputs of one
    subject are built at once with a rank mask (no loop over voxels) and passed to ``predict``
    together, so ``predict`` decides the batching.

    Parameters
    ----------
    predict : callable
        ``predict(inputs) -> logits (n, n_classes)``, e.g. :func:`logit_function`.
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
    """
    x = np.asarray(x, dtype=np.float32)
    maps = np.asarray(maps)
    baseline = np.broadcast_to(np.asarray(baseline, dtype=np.float32), x.shape)
    if maps.shape != x.shape:
        raise ValueError(f"maps of shape {maps.shape} do not match inputs {x.shape}")
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if classes.shape[0] != x.shape[0]:
        raise ValueError(f"{classes.shape[0]} classes for {x.shape[0]} inputs")
    if int(steps) < 1 or int(patches_per_step) < 1:
        raise ValueError(f"steps={steps} and patches_per_step={patches_per_step} must be ≥ 1")
    labels, n_patches = patch_labels(x.shape[1:-1], patch)
    removed = np.arange(int(steps) + 1) * int(patches_per_step)
    if removed[-1] > n_patches:
        raise ValueError(f"{steps} steps of {patches_per_step} patches remove {removed[-1]} patches "
                         f"but the input has only {n_patches} patches of {patch} voxels")
    scores = patch_relevance(maps, labels, n_patches)
    patch_sizes = np.bincount(labels.ravel(), minlength=n_patches)
    logits = np.empty((x.shape[0], removed.size), dtype=np.float64)
    fraction = np.empty((x.shape[0], removed.size), dtype=np.float64)
    for b in range(x.shape[0]):
        order = np.argsort(-scores[b], kind="stable")
        rank = np.empty(n_patches, dtype=np.int64)
        rank[order] = np.arange(n_patches)
        voxel_rank = rank[labels][..., None]  # (*spatial, 1): rank of the voxel's patch
        shape = (removed.size,) + (1,) * (x.ndim - 1)
        masks = voxel_rank[None] < removed.reshape(shape)
        batch = np.where(masks, baseline[b][None], x[b][None])
        logits[b] = np.asarray(predict(batch))[:, classes[b]]
        fraction[b] = np.cumsum(np.concatenate([[0], patch_sizes[order]]))[removed] / labels.size
    drops = logits[:, :1] - logits
    return PerturbationResult(logits, drops, fraction.mean(axis=0), drops.mean(axis=1))


# --------------------------------------------------------------------------------------------------
# Cascading parameter randomisation


def cascade_groups(model, granularity: str = "block") -> list[tuple[str, list[str]]]:
    """Layers with weights, top (output) to bottom, grouped into cascade steps.

    ``granularity="layer"``: one step per layer (Adebayo et al. 2018); ``"block"``: layers sharing a
    name prefix before the first ``_`` (``block4_conv_a``, ``block4_conv_b``, ``block4_bn`` → ``block4``)
    form one step. Returns ``[(step label, [layer names])]``.
    """
    if granularity not in ("layer", "block"):
        raise ValueError(f"granularity must be 'layer' or 'block', got {granularity!r}")
    layers = [layer for layer in model.layers if layer.trainable_weights][::-1]
    if not layers:
        raise ValueError(f"model {model.name!r} has no layer with trainable weights to randomise")
    groups: list[tuple[str, list[str]]] = []
    for layer in layers:
        key = layer.name if granularity == "layer" else layer.name.split("_")[0]
        if groups and groups[-1][0] == key:
            groups[-1][1].append(layer.name)
        else:
            groups.append((key, [layer.name]))
    return groups


def _reinitialise(layer, seed: int) -> None:
    """Draw the layer's trainable weights afresh from its own initialisers (seeded)."""
    import keras

    for i, var in enumerate(layer.trainable_weights):
        short = var.name.split("/")[-1]
        initializer = getattr(layer, f"{short}_initializer", None)
        if initializer is None:
            initializer = keras.initializers.GlorotUniform()
        config = initializer.get_config()
        if "seed" in config:
            config["seed"] = int(seed) * 1000 + i
        fresh = type(initializer).from_config(config)
        var.assign(fresh(tuple(var.shape), dtype=var.dtype))


def randomisation_cascade(model, granularity: str = "block", seed: int = 0,
                          groups: list | None = None) -> Iterator[tuple[str, list[str], object]]:
    """Cascading randomisation: yield ``(step label, layers randomised so far, model)``.

    The model is a copy of ``model`` (which is left untouched); each step re-initialises one more
    group of layers, top down, and the same copy is yielded again, so build what you need from it
    (e.g. an analyzer, which snapshots the weights) before advancing. Re-initialising means drawing
    every trainable weight afresh from the layer's own initialiser (seeded), as at the start of
    training: Dense/Conv kernels Glorot-uniform and biases zero by default; BatchNormalization's scale
    and shift go back to 1 and 0 while its moving statistics (not trainable) are kept.
    """
    import keras

    groups = cascade_groups(model, granularity) if groups is None else groups
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    done: list[str] = []
    for step, (label, names) in enumerate(groups):
        for name in names:
            _reinitialise(copy.get_layer(name), seed + step)
        done.extend(names)
        yield label, list(done), copy


def _normalised(m: np.ndarray, signed: bool) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    m = m if signed else np.abs(m)
    peak = np.abs(m).max()
    return m / peak if peak > 0 else m


def _ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    from skimage.metrics import structural_similarity

    win = min(7, *a.shape)
    win = win if win % 2 else win - 1
    if win < 3:
        return float("nan")
    return float(structural_similarity(a, b, data_range=data_range, win_size=win))


def map_similarity(original: np.ndarray, other: np.ndarray, mask: np.ndarray | None = None,
                   signed: bool = False, max_voxels: int | None = 200_000,
                   rng: np.random.Generator | None = None) -> dict:
    """Spearman rank correlation and SSIM between two maps of one input (Adebayo et al. 2018).

    Both maps are made absolute (unless ``signed``) and divided by their largest magnitude. The
    Spearman correlation is over the voxels in ``mask`` (default all; at most ``max_voxels`` of them,
    a random subset); SSIM (scikit-image, 7-voxel window) is over the whole map with every spatial axis
    (the full 3-D volume for brains, the image for digits), data range 1 (2 when signed).
    Channels are summed.
    """
    from scipy.stats import spearmanr

    a = _normalised(np.asarray(original).sum(axis=-1), signed)
    b = _normalised(np.asarray(other).sum(axis=-1), signed)
    if a.shape != b.shape:
        raise ValueError(f"maps of shapes {a.shape} and {b.shape} cannot be compared")
    va, vb = (a[mask], b[mask]) if mask is not None else (a.ravel(), b.ravel())
    if max_voxels is not None and va.size > max_voxels:
        pick = (rng or np.random.default_rng(0)).choice(va.size, int(max_voxels), replace=False)
        va, vb = va[pick], vb[pick]
    if np.ptp(va) == 0 or np.ptp(vb) == 0:
        rho = float("nan")
    else:
        rho = float(spearmanr(va, vb).statistic)
    return {"spearman": rho, "ssim": _ssim(a, b, 2.0 if signed else 1.0)}


def cascading_randomisation(model, x: np.ndarray, explain: Callable, granularity: str = "block",
                            seed: int = 0, mask: np.ndarray | None = None, signed: bool = True,
                            max_voxels: int | None = 200_000, original: np.ndarray | None = None,
                            groups: list | None = None) -> pd.DataFrame:
    """Re-explain ``x`` after each cascade step and compare with the trained network's maps.

    Parameters
    ----------
    model : keras.Model
        The trained network (not modified).
    x : ndarray (batch, *spatial, channels)
    explain : callable
        ``explain(model, x) -> maps`` shaped like ``x``. Explain a fixed class per input (the one
        explained for the trained model) so that only the weights change between steps.
    mask : ndarray of bool, shape ``spatial``, optional
        Voxels for the Spearman correlation (e.g. the brain).
    signed : bool
        Also compare the signed maps (columns ``spearman_signed``, ``ssim_signed``).
    original : ndarray, optional
        ``explain(model, x)`` when already computed.

    Returns
    -------
    DataFrame
        One row per input and step: ``input``, ``step`` (1-based), ``layer`` (the group randomised at
        this step), ``n_layers`` (layers randomised so far), ``spearman_abs``, ``ssim_abs`` and, when
        ``signed``, ``spearman_signed``, ``ssim_signed``. Step 0 (the trained network, similarity 1)
        is not listed.
    """
    x = np.asarray(x, dtype=np.float32)
    original = np.asarray(explain(model, x) if original is None else original)
    rng = np.random.default_rng(seed)
    rows = []
    for step, (label, done, randomised) in enumerate(
            randomisation_cascade(model, granularity, seed, groups), start=1):
        maps = np.asarray(explain(randomised, x))
        for i in range(x.shape[0]):
            row = {"input": i, "step": step, "layer": label, "n_layers": len(done)}
            kinds = (("abs", False), ("signed", True)) if signed else (("abs", False),)
            for tag, sign in kinds:
                sim = map_similarity(original[i], maps[i], mask, sign, max_voxels, rng)
                row[f"spearman_{tag}"] = sim["spearman"]
                row[f"ssim_{tag}"] = sim["ssim"]
            rows.append(row)
    return pd.DataFrame(rows)


def insensitive_methods(table: pd.DataFrame, after: str, threshold: float = 0.9,
                        metric: str = "spearman_abs") -> dict:
    """Methods whose maps stay similar once the cascade has reached step ``after``.

    Parameters
    ----------
    table : DataFrame
        :func:`cascading_randomisation` rows with a ``method`` column.
    after : str
        Step label (e.g. ``"dense1"``: logits and dense1 randomised); every step from there on counts.
    threshold : float
        Flag when the mean ``metric`` over inputs at that step exceeds it.

    Returns
    -------
    dict
        ``{method: mean metric at step after}`` for the flagged methods.
    """
    flagged = {}
    for method, group in table.groupby("method", sort=False):
        at = group[group["layer"] == after]
        if at.empty:
            raise ValueError(f"cascade step {after!r} not in the randomisation table; steps: "
                             f"{list(dict.fromkeys(group['layer']))}")
        value = float(at[metric].mean())
        if value > threshold:
            flagged[method] = value
    return flagged


# --------------------------------------------------------------------------------------------------
# Ground-truth localisation


def localisation_scores(maps: np.ndarray, mask: np.ndarray, brain: np.ndarray | None = None,
                        relevance: str = "positive", max_voxels: int | None = 200_000,
                        seed: int = 0, with_auc: bool = True) -> pd.DataFrame:
    """How well each map finds the ground-truth voxels.

    Parameters
    ----------
    maps : ndarray (batch, *spatial[, channels])
        Channels, if any, are summed.
    mask : ndarray of bool, shape ``spatial``
        The ground truth (e.g. voxels the synthetic generator aged).
    brain : ndarray of bool, shape ``spatial``, optional
        Voxels that count (default all).
    relevance : {"positive", "absolute"}
        Score voxels by ``max(R, 0)`` (evidence for the class) or ``|R|``.
    max_voxels : int or None
        The AUC uses a fixed random subset of at most this many brain voxels.
    with_auc : bool
        False skips the AUC (NaN), the slow part.

    Returns
    -------
    DataFrame
        Per map: ``mass_share`` (relevance inside the mask / relevance in the brain), ``mask_share``
        (mask voxels / brain voxels), ``mass_ratio = mass_share / mask_share`` (1: no better than a
        uniform map; ``1 / mask_share`` at most), ``auc`` (ROC AUC of voxel scores against the mask;
        0.5 = chance) and ``brain_share`` (relevance in the brain / relevance anywhere). NaN where
        the map has no relevance to share or the mask is empty or full.
    """
    from sklearn.metrics import roc_auc_score

    mask = np.asarray(mask, dtype=bool)
    brain = np.ones(mask.shape, bool) if brain is None else np.asarray(brain, dtype=bool)
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape[1:] != mask.shape:
        if maps.shape[1:-1] != mask.shape:
            raise ValueError(f"maps of shape {maps.shape} do not match the mask {mask.shape}")
        maps = maps.sum(axis=-1)
    if brain.shape != mask.shape:
        raise ValueError(f"brain mask {brain.shape} and ground-truth mask {mask.shape} differ")
    if relevance == "positive":
        scores = np.maximum(maps, 0.0)
    elif relevance == "absolute":
        scores = np.abs(maps)
    else:
        raise ValueError(f"relevance must be 'positive' or 'absolute', got {relevance!r}")
    truth = mask[brain]
    everywhere = scores.reshape(len(scores), -1).sum(axis=1)
    scores = scores[:, brain]
    mask_share = truth.mean() if truth.size else np.nan
    total = scores.sum(axis=1)
    inside = scores[:, truth].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mass_share = np.where(total > 0, inside / total, np.nan)
        brain_share = np.where(everywhere > 0, total / everywhere, np.nan)
    ratio = mass_share / mask_share if mask_share > 0 else np.full(len(maps), np.nan)
    pick = np.arange(truth.size)
    if max_voxels is not None and truth.size > max_voxels:
        pick = np.sort(np.random.default_rng(seed).choice(truth.size, int(max_voxels), replace=False))
    sub = truth[pick]
    both = with_auc and sub.any() and not sub.all()
    auc = [float(roc_auc_score(sub, s[pick])) if both else np.nan for s in scores]
    return pd.DataFrame({"mass_share": mass_share, "mask_share": mask_share, "mass_ratio": ratio,
                         "auc": auc, "brain_share": brain_share})


# --------------------------------------------------------------------------------------------------
# Summaries


def mean_se(values) -> tuple[float, float, int]:
    """Mean, standard error (sd / √n, ddof 1; NaN for n < 2) and n of the finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), 0
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), se, int(v.size)


# --------------------------------------------------------------------------------------------------
# Map character: how local and how subject-specific a method's maps are


def map_profile(maps: np.ndarray, brain: np.ndarray | None = None, max_voxels: int | None = 100_000,
                seed: int = 0) -> dict:
    """Roughness and between-subject similarity of a set of maps (one per subject).

    ``roughness`` = mean |spatial gradient| / mean |map| inside ``brain`` (per voxel; larger =
    finer, more local detail); ``focus`` = share of brain voxels that hold half of the absolute
    relevance (smaller = more concentrated); ``between_subject_spearman`` = mean pairwise Spearman
    correlation of the absolute maps across subjects (larger = more general, the same map whoever
    the subject). Seed 002 (Grad-CAM) expects deeper layers to be more general and shallower ones
    more local; this measures it.
    """
    from scipy.stats import spearmanr

    m = np.abs(np.asarray(maps, dtype=np.float64).sum(axis=-1))
    spatial = m.shape[1:]
    brain = np.ones(spatial, bool) if brain is None else np.asarray(brain, bool)
    rough, focus = [], []
    for v in m:
        grads = np.gradient(v)
        gmag = np.sqrt(sum(g * g for g in grads))
        level = v[brain].mean()
        rough.append(gmag[brain].mean() / level if level > 0 else np.nan)
        values = np.sort(v[brain])[::-1]
        total = values.sum()
        focus.append(np.searchsorted(np.cumsum(values), 0.5 * total) / values.size
                     if total > 0 else np.nan)
    idx = np.flatnonzero(brain.ravel())
    if max_voxels is not None and idx.size > max_voxels:
        idx = np.random.default_rng(seed).choice(idx, int(max_voxels), replace=False)
    flat = m.reshape(len(m), -1)[:, idx]
    pairs = [spearmanr(flat[i], flat[j]).statistic
             for i in range(len(m)) for j in range(i + 1, len(m))
             if np.ptp(flat[i]) > 0 and np.ptp(flat[j]) > 0]
    return {"roughness": float(np.nanmean(rough)), "focus": float(np.nanmean(focus)),
            "between_subject_spearman": float(np.mean(pairs)) if pairs else float("nan")}


def methods_figure(x: np.ndarray, maps: dict, title: str, out_png) -> None:
    """One input's maps side by side (axial and coronal mid-slices, |map| scaled to its maximum)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(maps)
    vol = np.asarray(x)[..., 0]
    k, j = vol.shape[2] // 2, vol.shape[1] // 2
    fig, axes = plt.subplots(2, len(names) + 1, figsize=(2.3 * (len(names) + 1), 5.2),
                             squeeze=False)
    views = [lambda v: np.rot90(v[:, :, k]), lambda v: np.rot90(v[:, j, :])]
    for r, view in enumerate(views):
        axes[r, 0].imshow(view(vol), cmap="gray")
        axes[r, 0].set_title("input (GM)" if r == 0 else "", fontsize=9)
        for c, name in enumerate(names, start=1):
            m = np.abs(np.asarray(maps[name])[..., 0])
            top = m.max() or 1.0
            axes[r, c].imshow(view(vol), cmap="gray")
            axes[r, c].imshow(view(m / top), cmap="hot", alpha=0.75, vmin=0, vmax=1)
            axes[r, c].set_title(name if r == 0 else "", fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)

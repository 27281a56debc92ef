"""Cascading parameter randomisation (Adebayo et al. 2018, NeurIPS, "Sanity checks for saliency maps").

Re-initialise the weights from the top layer down, re-explain after each step and compare with the
original map (Spearman rank correlation and SSIM of the absolute maps, optionally signed). A map that
stays the same while the network it claims to explain is destroyed fails the check.

An ensemble (:class:`~brainage.ensemble.one_model.EnsembleModel`, members of one architecture) is
randomised as one network: each step re-initialises the same named layers in a copy of every
member, each member drawn as its own cascade draws it, and the ensemble of the copies is explained.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd

from brainage.ensemble.one_model import EnsembleModel


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

    An :class:`~brainage.ensemble.one_model.EnsembleModel` yields an ensemble of its members'
    copies, the same named layers randomised in each (``groups`` from its first member).
    """
    if isinstance(model, EnsembleModel):
        yield from _ensemble_cascade(model, granularity, seed, groups)
        return
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


def _ensemble_cascade(ensemble: EnsembleModel, granularity: str, seed: int,
                      groups: list | None) -> Iterator[tuple[str, list[str], EnsembleModel]]:
    """Every member's cascade in step: at each step an ensemble of the members' copies, each
    randomised as the member's own cascade (same seeds) randomises it."""
    groups = cascade_groups(ensemble.models[0], granularity) if groups is None else groups
    for steps in zip(*(randomisation_cascade(m, granularity, seed, groups)
                       for m in ensemble.models)):
        label, done, _ = steps[0]
        yield label, done, replace(ensemble, models=tuple(copy for *_, copy in steps))


def _normalised(m: np.ndarray, signed: bool) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    m = m if signed else np.abs(m)
    peak = np.abs(m).max()
    return m / peak if peak > 0 else m


class _Similarity:
    """One original map prepared for comparison (its window statistics filtered once).

    The map is channel-summed, made absolute (unless ``signed``) and divided by its peak once, and
    its SSIM window statistics (local mean and variance) are filtered once, so each comparison
    filters only the other map and the product: the same arithmetic as scikit-image's
    ``structural_similarity`` (7-voxel uniform window, sample covariance, K1 = 0.01, K2 = 0.03),
    in the same order, so the same numbers. It holds five float64 volumes (~50 MB for a brain
    crop): the cascade builds one per comparison rather than keeping every original's.
    """

    def __init__(self, original: np.ndarray, signed: bool):
        self.signed = signed
        self.a = _normalised(np.asarray(original).sum(axis=-1), signed)
        win = min(7, *self.a.shape)
        self.win = win if win % 2 else win - 1
        self._stats = None

    def _window_stats(self) -> tuple:
        """``(ux, vx, 2·ux, ux²)`` of the original, filtered once."""
        if self._stats is None:
            from scipy.ndimage import uniform_filter

            a, n = self.a, self.win ** self.a.ndim
            ux = uniform_filter(a, size=self.win)
            vx = n / (n - 1) * (uniform_filter(a * a, size=self.win) - ux * ux)
            self._stats = ux, vx, 2 * ux, ux ** 2
        return self._stats

    def ssim(self, b: np.ndarray) -> float:
        """Mean SSIM with ``b`` (normalised like the original), data range 1 (2 when signed)."""
        if self.win < 3:
            return float("nan")
        from scipy.ndimage import uniform_filter
        from skimage.util import crop

        ux, vx, twice_ux, ux_squared = self._window_stats()
        n, size = self.win ** self.a.ndim, self.win
        r = 2.0 if self.signed else 1.0
        c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
        uy = uniform_filter(b, size=size)
        vy = n / (n - 1) * (uniform_filter(b * b, size=size) - uy * uy)
        vxy = n / (n - 1) * (uniform_filter(self.a * b, size=size) - ux * uy)
        numerator = (twice_ux * uy + c1) * (2 * vxy + c2)
        denominator = (ux_squared + uy ** 2 + c1) * (vx + vy + c2)
        return float(crop(numerator / denominator, (self.win - 1) // 2).mean(dtype=np.float64))

    def compare(self, other: np.ndarray, mask: np.ndarray | None, max_voxels: int | None,
                rng: np.random.Generator | None) -> dict:
        """:func:`map_similarity` of the original and ``other``."""
        from scipy.stats import spearmanr

        a, b = self.a, _normalised(np.asarray(other).sum(axis=-1), self.signed)
        if a.shape != b.shape:
            raise ValueError(f"maps of shapes {a.shape} and {b.shape} cannot be compared")
        va, vb = (a[mask], b[mask]) if mask is not None else (a.ravel(), b.ravel())
        if max_voxels is not None and va.size > max_voxels:
            pick = (rng or np.random.default_rng(0)).choice(va.size, int(max_voxels),
                                                            replace=False)
            va, vb = va[pick], vb[pick]
        if np.ptp(va) == 0 or np.ptp(vb) == 0:
            rho = float("nan")
        else:
            rho = float(spearmanr(va, vb).statistic)
        return {"spearman": rho, "ssim": self.ssim(b)}


def map_similarity(original: np.ndarray, other: np.ndarray, mask: np.ndarray | None = None,
                   signed: bool = False, max_voxels: int | None = 200_000,
                   rng: np.random.Generator | None = None) -> dict:
    """Spearman rank correlation and SSIM between two maps of one input (Adebayo et al. 2018).

    Both maps are made absolute (unless ``signed``) and divided by their largest magnitude. The
    Spearman correlation is over the voxels in ``mask`` (default all; at most ``max_voxels`` of them,
    a random subset); SSIM (scikit-image's, 7-voxel window) is over the whole map with every spatial
    axis (the full 3-D volume for brains, the image for digits), data range 1 (2 when signed).
    Channels are summed.
    """
    return _Similarity(original, signed).compare(other, mask, max_voxels, rng)


def cascading_randomisation(model, x: np.ndarray, explain: Callable, granularity: str = "block",
                            seed: int = 0, mask: np.ndarray | None = None, signed: bool = True,
                            max_voxels: int | None = 200_000, original=None,
                            groups: list | None = None, progress=None) -> pd.DataFrame:
    """Re-explain ``x`` after each cascade step and compare with the trained network's maps.

    One randomised copy serves every method: each step re-initialises one more group of layers
    once, then ``explain`` builds what it needs from it (one analyzer per method and step).

    Parameters
    ----------
    model : keras.Model or EnsembleModel
        The trained network (not modified); an ensemble's members are randomised in step.
    x : ndarray (batch, *spatial, channels)
    explain : callable
        ``explain(model, x) -> maps`` shaped like ``x``, or a dict ``{key: maps}`` to compare several
        methods (or target modes) on one cascade. Explain a fixed class per input (the one
        explained for the trained model) so that only the weights change between steps.
    mask : ndarray of bool, shape ``spatial``, optional
        Voxels for the Spearman correlation (e.g. the brain).
    signed : bool
        Also compare the signed maps (``spearman_signed``, ``ssim_signed``).
    original : ndarray or dict, optional
        ``explain(model, x)`` when already computed.
    progress : callable, optional
        ``progress(n)``: ``n`` more maps compared (after each key of each step).

    Returns
    -------
    DataFrame
        One row per input and step (and key, in a ``key`` column, when ``explain`` returns a
        dict): ``input``, ``step`` (1-based), ``layer`` (the group randomised at this step),
        ``n_layers`` (layers randomised so far), ``spearman_abs``, ``ssim_abs`` (and the signed
        columns). Step 0 (the trained network, similarity 1) is not listed.
    """
    x = np.asarray(x, dtype=np.float32)
    original = explain(model, x) if original is None else original
    keyed = isinstance(original, dict)
    original = original if keyed else {None: original}
    compare = _StepComparison(original, keyed, mask, signed, max_voxels,
                              np.random.default_rng(seed), progress)
    # One worker compares a step's maps while the next step is explained: the comparisons
    # (numpy, one core) overlap the explaining (TensorFlow/JAX); one worker keeps their order,
    # and so the random voxel subsets and every number, as if run in turn.
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = []
        for step, (label, done, randomised) in enumerate(
                randomisation_cascade(model, granularity, seed, groups), start=1):
            maps = explain(randomised, x)
            maps = maps if keyed else {None: maps}
            pending.append(worker.submit(compare, maps, step, label, len(done)))
        return pd.DataFrame([row for job in pending for row in job.result()])


class _StepComparison:
    """The rows of one cascade step: every key's maps against the originals, input by input
    (the original's window statistics are not kept across steps: ~50 MB per original)."""

    def __init__(self, original: dict, keyed: bool, mask, signed: bool, max_voxels, rng, progress):
        self.original, self.keyed, self.mask, self.max_voxels = original, keyed, mask, max_voxels
        self.kinds = (("abs", False), ("signed", True)) if signed else (("abs", False),)
        self.rng, self.progress = rng, progress

    def __call__(self, maps: dict, step: int, label: str, n_layers: int) -> list:
        rows = []
        for key, before in self.original.items():
            after = np.asarray(maps[key])
            for i in range(len(after)):
                row = {"key": key} if self.keyed else {}
                row.update({"input": i, "step": step, "layer": label, "n_layers": n_layers})
                for tag, sign in self.kinds:
                    sim = _Similarity(before[i], sign).compare(after[i], self.mask,
                                                               self.max_voxels, self.rng)
                    row.update({f"spearman_{tag}": sim["spearman"], f"ssim_{tag}": sim["ssim"]})
                rows.append(row)
            if self.progress is not None:
                self.progress(len(after))
        return rows


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

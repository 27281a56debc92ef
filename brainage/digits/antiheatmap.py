"""The seed's anti-heatmap claim, measured: are normalised heat maps and anti-heatmaps negatives?

Seed 000 §2.2.3 reports that the heat map of the chosen class normalised to [0, 1] and the
"anti-heatmap" of a class not chosen normalised to [−1, 0] sum to 0 at every pixel. With min–max
normalisation that holds exactly when the raw maps are perfectly anti-correlated, so the check
reports the Pearson correlation of the raw maps beside the per-pixel |sum| of the normalised ones.
"""
from __future__ import annotations

import numpy as np

# The verdict's thresholds: "exact" allows float32 rounding; "approximately" a correlation of −0.95.
EXACT_MAX_ABS_SUM = 1e-3
APPROXIMATE_CORRELATION = -0.95


def normalise_heatmap(h: np.ndarray) -> np.ndarray:
    """Min–max to [0, 1] per map (axes after the first); a constant map becomes 0."""
    axes = tuple(range(1, h.ndim))
    lo, hi = h.min(axis=axes, keepdims=True), h.max(axis=axes, keepdims=True)
    return np.where(hi > lo, (h - lo) / np.where(hi > lo, hi - lo, 1), 0.0)


def normalise_antiheatmap(a: np.ndarray) -> np.ndarray:
    """Min–max to [−1, 0] per map: the largest value goes to 0, the smallest to −1."""
    return normalise_heatmap(a) - 1.0


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``a[i]`` and ``b[i]`` for each i (NaN where a map is constant)."""
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(axis=1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=1) / den, np.nan)


def _pair_statistics(tag: str, pick, max_sum, mean_sum, corr, tolerance: float) -> dict:
    out = {f"{tag}_n_pairs": int(pick.sum())}
    if pick.any():
        out.update({
            f"{tag}_max_abs_sum_median": float(np.median(max_sum[pick])),
            f"{tag}_max_abs_sum_worst": float(max_sum[pick].max()),
            f"{tag}_mean_abs_sum": float(mean_sum[pick].mean()),
            f"{tag}_correlation_mean": float(np.nanmean(corr[pick])),
            f"{tag}_correlation_min": float(np.nanmin(corr[pick])),
            f"{tag}_correlation_max": float(np.nanmax(corr[pick])),
            f"{tag}_share_within": float((max_sum[pick] < tolerance).mean()),
        })
    return out


def anti_heatmap_check(maps_all: np.ndarray, logits: np.ndarray, tolerance: float = 0.05) -> dict:
    """Measure the seed's claim that normalised heat maps and anti-heatmaps are exact negatives.

    Parameters
    ----------
    maps_all : array (n_classes, n, *spatial[, channels])
        Maps of every class (``target="all"``).
    logits : array (n, n_classes)
    tolerance : float
        A pair "holds" when ``max |h_n + a_n| < tolerance`` over its pixels.

    Returns
    -------
    dict
        For three sets of (image, class) pairs — ``least`` (the least likely class, the seed's
        figure 5), ``negative`` (every class not chosen whose logit is < 0) and ``positive`` (classes
        not chosen with logit ≥ 0) — ``*_n_pairs``, the median and worst per-pair ``max |h_n + a_n|``,
        the mean ``|h_n + a_n|``, the mean/min/max Pearson correlation of the raw maps (−1 = exact
        negatives) and ``*_share_within``: the share of pairs within ``tolerance``.
    """
    n_classes, n = maps_all.shape[:2]
    chosen = logits.argmax(axis=1)
    raw_heat = maps_all[chosen, np.arange(n)].astype(np.float64)
    heat = normalise_heatmap(raw_heat)
    images = np.repeat(np.arange(n), n_classes)
    classes = np.tile(np.arange(n_classes), n)
    keep = classes != chosen[images]
    images, classes = images[keep], classes[keep]
    anti = maps_all[classes, images].astype(np.float64)
    total = np.abs(heat[images] + normalise_antiheatmap(anti)).reshape(len(images), -1)
    max_sum, mean_sum = total.max(axis=1), total.mean(axis=1)
    corr = pearson(raw_heat[images], anti)
    pair_logit = logits[images, classes]
    sets = {"least": classes == logits.argmin(axis=1)[images], "negative": pair_logit < 0,
            "positive": pair_logit >= 0}
    out = {"n_images": int(n), "tolerance": float(tolerance)}
    for tag, pick in sets.items():
        out.update(_pair_statistics(tag, pick, max_sum, mean_sum, corr, tolerance))
    return out


def claim_verdict(check: dict) -> str:
    """Whether the claim holds for the least likely class: exactly, approximately, or not."""
    if check["least_max_abs_sum_worst"] < EXACT_MAX_ABS_SUM:
        return "holds exactly"
    if check["least_correlation_mean"] < APPROXIMATE_CORRELATION:
        return "holds only approximately (close, not exact negatives)"
    return "does not hold"


def claim_sentence(name: str, check: dict) -> str:
    """The measurement of :func:`anti_heatmap_check` for network ``name`` in words, with the verdict."""
    tol = check["tolerance"]
    parts = [f"{name}: least likely class — max per-pixel |heatmap + anti-heatmap| "
             f"{check['least_max_abs_sum_median']:.3f} (median image; worst "
             f"{check['least_max_abs_sum_worst']:.3f}), raw-map correlation "
             f"{check['least_correlation_mean']:.4f}, {100 * check['least_share_within']:.0f} % of "
             f"images within {tol:g}"]
    for tag, label in (("negative", "other classes with a negative logit"),
                       ("positive", "classes not chosen with a positive logit")):
        if check.get(f"{tag}_n_pairs", 0):
            parts.append(f"{label} ({check[f'{tag}_n_pairs']} pairs): correlation "
                         f"{check[f'{tag}_correlation_mean']:.3f} "
                         f"[{check[f'{tag}_correlation_min']:.3f}, "
                         f"{check[f'{tag}_correlation_max']:.3f}], "
                         f"{100 * check[f'{tag}_share_within']:.0f} % within {tol:g}")
    return "; ".join(parts) + f". The seed's claim {claim_verdict(check)} for the least likely class."

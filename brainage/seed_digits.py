"""Seed 000 §2.2.3 on digits: DTD heat maps, "anti-heatmaps" and a misclassified digit.

``python -m brainage.seed_digits`` re-runs the seed's MNIST experiment offline. MNIST itself cannot be
downloaded here, so the data are scikit-learn's bundled ``load_digits`` (1,797 handwritten digits,
8×8 pixels, grey levels 0–16), **upsampled to 28×28 by linear interpolation** (``scipy.ndimage.zoom``,
order 1) and scaled to [0, 1] — blurrier and ~40× fewer than MNIST, so accuracies are not comparable
with the seed's 98.9 % / 99.0 %.

Two networks as in the seed: the fully connected 784-300-100-10 network and the CNN
Conv(32)–AvgPool–Conv(64)–AvgPool–Conv(64)–Flatten–Dense(64)–Dense(10) (both sizes from config).
Deep Taylor decomposition (preset ``dtd``: z⁺ on hidden layers, zᴮ with the pixel bounds [0, 1] at the
input) explains several correct test predictions. The seed (§2.2.3) reports that the heat map of the
chosen class normalised to [0, 1] and the "anti-heatmap" of any class not chosen normalised to [−1, 0]
are exact negatives, summing to 0 at every pixel. This module measures that claim: with min–max
normalisation the two sum to 0 everywhere exactly when the raw maps are perfectly anti-correlated, so
it reports the Pearson correlation of the raw maps and the largest per-pixel |sum| of the normalised
ones, for the least likely class (the seed's figure) and for every class not chosen.

Outputs (``outputs/seed_digits/<date>_<time>/``): ``figures/digits_dense.png``,
``figures/digits_cnn.png``, ``figures/digits_misclassified.png``, ``digits.json`` and ``digits.csv``
(accuracy, conservation and the anti-heatmap measurements per network).
"""
from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

SOURCE_NOTE = ("scikit-learn load_digits (8x8, 0-16) upsampled to {size}x{size} with "
               "scipy.ndimage.zoom (linear, order 1), scaled to [0, 1]; MNIST is not available offline")


# --------------------------------------------------------------------------------------------------
# Data and networks


def load_digits_upsampled(size: int = 28, limit: int | None = None, seed: int = 0):
    """scikit-learn's 8×8 digits upsampled to ``size × size`` in [0, 1].

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


def build_dense(input_shape=(28, 28, 1), hidden=(300, 100), n_classes: int = 10):
    """The seed's fully connected network: Flatten → Dense(300, relu) → Dense(100, relu) → Dense(10)."""
    import keras

    layers = [keras.Input(tuple(input_shape)), keras.layers.Flatten(name="flatten")]
    layers += [keras.layers.Dense(int(h), activation="relu", name=f"dense{i + 1}")
               for i, h in enumerate(hidden)]
    layers.append(keras.layers.Dense(n_classes, name="logits"))
    return keras.Sequential(layers, name="dense")


def build_cnn(input_shape=(28, 28, 1), filters=(32, 64, 64), pool_after: int = 2,
              dense_units: int = 64, n_classes: int = 10):
    """The seed's CNN: 3×3 ReLU convolutions, 2×2 average pooling after the first ``pool_after``."""
    import keras

    layers = [keras.Input(tuple(input_shape))]
    for i, f in enumerate(filters):
        layers.append(keras.layers.Conv2D(int(f), 3, activation="relu", name=f"conv{i + 1}"))
        if i < pool_after:
            layers.append(keras.layers.AveragePooling2D(2, name=f"pool{i + 1}"))
    layers += [keras.layers.Flatten(name="flatten")]
    if dense_units:
        layers.append(keras.layers.Dense(int(dense_units), activation="relu", name="dense1"))
    layers.append(keras.layers.Dense(n_classes, name="logits"))
    return keras.Sequential(layers, name="cnn")


def train_network(model, x, y, epochs: int = 10, batch_size: int = 32, learning_rate: float = 1e-3):
    """Fit with Adam on the logits (softmax cross-entropy in the loss)."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(float(learning_rate)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=int(epochs), batch_size=int(batch_size), verbose=0, shuffle=True)
    return model


# --------------------------------------------------------------------------------------------------
# Heat maps and anti-heatmaps


def normalise_heatmap(h: np.ndarray) -> np.ndarray:
    """Min–max to [0, 1] per map (axes after the first)."""
    axes = tuple(range(1, h.ndim))
    lo, hi = h.min(axis=axes, keepdims=True), h.max(axis=axes, keepdims=True)
    return np.where(hi > lo, (h - lo) / np.where(hi > lo, hi - lo, 1), 0.0)


def normalise_antiheatmap(a: np.ndarray) -> np.ndarray:
    """Min–max to [−1, 0] per map: the largest value goes to 0, the smallest to −1."""
    return normalise_heatmap(a) - 1.0


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(axis=1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=1) / den, np.nan)


def anti_heatmap_check(maps_all: np.ndarray, logits: np.ndarray, tolerance: float = 0.05) -> dict:
    """Measure the seed's claim that normalised heat maps and anti-heatmaps are exact negatives.

    The heat map of the chosen class is min–max normalised to [0, 1], the anti-heatmap of a class not
    chosen to [−1, 0]; the claim is that their sum is 0 at every pixel, i.e. that the raw maps are
    perfectly anti-correlated.

    Parameters
    ----------
    maps_all : array (n_classes, n, *spatial[, channels])
        DTD maps of every class (``target="all"``).
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
    heat = normalise_heatmap(maps_all[chosen, np.arange(n)].astype(np.float64))
    raw_heat = maps_all[chosen, np.arange(n)].astype(np.float64)
    images = np.repeat(np.arange(n), n_classes)
    classes = np.tile(np.arange(n_classes), n)
    keep = classes != chosen[images]
    images, classes = images[keep], classes[keep]
    anti = maps_all[classes, images].astype(np.float64)
    total = np.abs(heat[images] + normalise_antiheatmap(anti)).reshape(len(images), -1)
    max_sum, mean_sum = total.max(axis=1), total.mean(axis=1)
    corr = _pearson(raw_heat[images], anti)
    pair_logit = logits[images, classes]
    sets = {"least": classes == logits.argmin(axis=1)[images], "negative": pair_logit < 0,
            "positive": pair_logit >= 0}
    out = {"n_images": int(n), "tolerance": float(tolerance)}
    for tag, pick in sets.items():
        out[f"{tag}_n_pairs"] = int(pick.sum())
        if not pick.any():
            continue
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


def _claim_sentence(name: str, check: dict) -> str:
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
    exact = check["least_max_abs_sum_worst"] < 1e-3
    verdict = ("holds exactly" if exact else
               "holds only approximately (close, not exact negatives)"
               if check["least_correlation_mean"] < -0.95 else "does not hold")
    return "; ".join(parts) + f". The seed's claim {verdict} for the least likely class."


# --------------------------------------------------------------------------------------------------
# Figures


def _show(ax, img, cmap, vmin, vmax, title):
    ax.imshow(np.squeeze(img), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _examples_figure(path, name, x, y, logits, maps_all, picks, accuracy, note):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, len(picks), figsize=(1.9 * len(picks), 8.2), squeeze=False)
    for col, i in enumerate(picks):
        c, least = int(logits[i].argmax()), int(logits[i].argmin())
        h = normalise_heatmap(maps_all[c, i][None])[0]
        a = normalise_antiheatmap(maps_all[least, i][None])[0]
        _show(axes[0, col], x[i], "gray", 0, 1, f"digit {y[i]}, predicted {c}")
        _show(axes[1, col], h, "hot", 0, 1, f"heatmap ({c}) in [0, 1]")
        _show(axes[2, col], a, "Blues_r", -1, 0, f"anti-heatmap ({least}) in [-1, 0]")
        _show(axes[3, col], h + a, "RdBu_r", -1, 1, f"sum, max |.| {np.abs(h + a).max():.2f}")
    fig.suptitle(f"{name} network, DTD (test accuracy {100 * accuracy:.1f} %); anti-heatmap = least "
                 "likely class\n" + textwrap.fill(note, 110), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _misclassified_figure(path, cases, note):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(cases), 3, figsize=(6.4, 2.3 * len(cases)), squeeze=False)
    for row, (name, img, true, pred, h_pred, h_true) in enumerate(cases):
        if img is None:
            for ax in axes[row]:
                ax.axis("off")
            axes[row, 0].set_title(f"{name}: no misclassified test digit", fontsize=8)
            continue
        _show(axes[row, 0], img, "gray", 0, 1, f"{name}: a {true} classified as {pred}")
        _show(axes[row, 1], normalise_heatmap(h_pred[None])[0], "hot", 0, 1, f"heatmap for {pred}")
        _show(axes[row, 2], normalise_heatmap(h_true[None])[0], "hot", 0, 1, f"heatmap for {true}")
    fig.suptitle("Misclassified digits, DTD\n" + textwrap.fill(note, 70), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# The experiment


def run_digits(cfg, run_dir) -> dict:
    """Train both networks, explain, measure, and write figures, ``digits.json`` and ``digits.csv``."""
    import keras
    from omegaconf import OmegaConf
    from sklearn.model_selection import train_test_split

    from brainage.relevance import analyzer_from_config

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    (run_dir / "figures").mkdir(parents=True, exist_ok=True)
    seed = int(cfg.get("seed", 0))
    size = int(cfg.data.get("size", 28))
    x, y = load_digits_upsampled(size, cfg.data.get("limit"), seed)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=float(cfg.data.get("test_fraction", 0.25)), random_state=seed, stratify=y)
    note = SOURCE_NOTE.format(size=size)
    explainer = OmegaConf.to_container(cfg.explainer, resolve=True)
    builders = {
        "dense": lambda: build_dense(x.shape[1:], tuple(cfg.dense.hidden)),
        "cnn": lambda: build_cnn(x.shape[1:], tuple(cfg.cnn.filters), int(cfg.cnn.pool_after),
                                 int(cfg.cnn.dense_units)),
    }
    results, cases = {}, []
    for name, build in builders.items():
        net_cfg = cfg[name]
        keras.utils.set_random_seed(seed)
        t = time.perf_counter()
        model = train_network(build(), x_train, y_train, net_cfg.epochs, net_cfg.batch_size,
                              net_cfg.learning_rate)
        train_s = time.perf_counter() - t
        logits = np.asarray(model.predict(x_test, verbose=0))
        predicted = logits.argmax(axis=1)
        accuracy = float((predicted == y_test).mean())
        analyzer = analyzer_from_config(model, explainer)
        expl = analyzer.explain(x_test, target="all")
        maps_all = np.asarray(expl.maps)
        chosen = expl.rel_error[predicted, np.arange(len(y_test))]
        correct = np.flatnonzero(predicted == y_test)
        subset = correct if cfg.get("anti_subset") is None else correct[:int(cfg.anti_subset)]
        check = anti_heatmap_check(maps_all[:, subset], logits[subset])
        picks = np.random.default_rng(seed).choice(correct, min(int(cfg.examples), len(correct)),
                                                   replace=False)
        _examples_figure(run_dir / "figures" / f"digits_{name}.png", name, x_test, y_test, logits,
                         maps_all, picks, accuracy, note)
        wrong = np.flatnonzero(predicted != y_test)
        if len(wrong):
            i = int(wrong[0])
            cases.append((name, x_test[i], int(y_test[i]), int(predicted[i]),
                          maps_all[predicted[i], i], maps_all[y_test[i], i]))
        else:
            cases.append((name, None, None, None, None, None))
        results[name] = {
            "parameters": int(model.count_params()), "epochs": int(net_cfg.epochs),
            "train_seconds": round(train_s, 1), "test_accuracy": accuracy,
            "n_train": int(len(y_train)), "n_test": int(len(y_test)),
            "conservation_max_rel_error": float(np.nanmax(chosen)),
            "conservation_median_rel_error": float(np.nanmedian(chosen)),
            "negative_share_chosen": float(np.mean(expl.negative_share[predicted, np.arange(len(y_test))])),
            "anti_heatmap": check, "claim": _claim_sentence(name, check),
            "misclassified": int(len(wrong)),
            "misclassified_example_map_correlation": (
                float(_pearson(cases[-1][4][None], cases[-1][5][None])[0]) if len(wrong) else None),
        }
    _misclassified_figure(run_dir / "figures" / "digits_misclassified.png", cases, note)
    summary = {"data": note, "n_digits": int(len(y)), "explainer": explainer,
               "networks": results, "seconds": round(time.perf_counter() - t0, 1)}
    (run_dir / "digits.json").write_text(json.dumps(summary, indent=2))
    rows = []
    for name, r in results.items():
        flat = {k: v for k, v in r.items() if k not in ("anti_heatmap", "claim")}
        rows.append({"network": name, **flat,
                     **{f"anti_{k}": v for k, v in r["anti_heatmap"].items()}})
    pd.DataFrame(rows).to_csv(run_dir / "digits.csv", index=False)
    return summary


def _main(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        summary = run_digits(cfg, run_dir)
    except (ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(summary["data"])
    for name, r in summary["networks"].items():
        print(f"{name}: test accuracy {100 * r['test_accuracy']:.1f} %, DTD conservation max "
              f"rel. error {r['conservation_max_rel_error']:.1e}")
        print("  " + r["claim"])
    print(f"figures and digits.json in {run_dir}")


def main() -> None:
    import hydra

    hydra.main(version_base="1.3", config_path="../configs", config_name="digits")(_main)()


if __name__ == "__main__":
    main()

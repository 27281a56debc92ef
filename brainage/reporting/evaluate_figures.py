"""The evaluate stage's figures: scorecard, perturbation curves and AOPC, randomisation,
localisation, methods.

Every function takes the summary tables the stage writes (``perturbation.csv``, ``aopc.csv``, …) and
the name of the random-map floor, drawn black and dashed. Curves and bars are labelled by pair
(``method``, or ``method [target]`` when several target modes were scored).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainage.reporting.canvas import new_figure, save
from brainage.reporting.scorecard_cells import NOT_APPLICABLE, applicable_goals, pair_labels

CHECK_COLUMNS = ("randomisation", "class_maps", "aopc", "localisation", "conservation")


def method_colours(labels: list, floor: str) -> dict:
    """A tab10 colour per pair label, black for the floor's labels."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    scored = [label for label in labels if not is_floor(label, floor)]
    colours = {label: cmap(i % 10) for i, label in enumerate(scored)}
    colours.update({label: "black" for label in labels if is_floor(label, floor)})
    return colours


def is_floor(label: str, floor: str) -> bool:
    """Whether a pair label (``random`` or ``random [target]``) names the floor."""
    return str(label) == floor or str(label).startswith(f"{floor} [")


def _labelled(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its pairs' display labels in ``method`` (figures group by it)."""
    return table.assign(method=pair_labels(table))


def evaluate_figures(folder: Path, results: dict, card: pd.DataFrame, cascade: list,
                     flag_spearman: float, floor: str) -> None:
    """``scorecard.png`` and, for the checks that ran, ``perturbation.png``,
    ``randomisation.png`` and ``localisation.png``.

    ``card``: the checked scorecard; ``cascade``: the randomisation steps' labels, top down.
    """
    colours = method_colours(list(pair_labels(card)), floor)
    scorecard_figure(card, folder / "scorecard.png")
    if "perturbation" in results:
        perturbation_figure(_labelled(results["perturbation"]), _labelled(results["aopc"]),
                            colours, floor, folder / "perturbation.png")
    if "randomisation" in results:
        randomisation_figure(_labelled(results["randomisation"]), cascade, flag_spearman, colours,
                             folder / "randomisation.png")
    if "localisation" in results:
        localisation_figure(_labelled(results["localisation"]), colours,
                            folder / "localisation.png")


_NA_STATUS = -1.0  # a check that does not apply (an age regressor's class maps)


def _status(value) -> float:
    """1 pass, 0 fail, NaN not measured, ``_NA_STATUS`` not applicable (``n/a``)."""
    if isinstance(value, str) and value == NOT_APPLICABLE:
        return _NA_STATUS
    return np.nan if pd.isna(value) else float(bool(value))


def scorecard_figure(card: pd.DataFrame, out_png) -> Path:
    """Pass (green), fail (red) and not measured (grey) per pair and check; the floor left out."""
    from matplotlib.colors import ListedColormap

    card = card[card["verdict"] != "floor"]
    labels = list(pair_labels(card))
    status = np.array([[_status(v) for v in card[f"pass_{c}"]]
                       for c in CHECK_COLUMNS]).T.reshape(len(card), len(CHECK_COLUMNS))
    fig, ax = new_figure(1, 1, figsize=(7, 0.45 * len(labels) + 1.6))
    shown = np.where(np.isnan(status) | (status == _NA_STATUS), 0.5, status)
    ax.imshow(shown, cmap=ListedColormap(["#d9534f", "#bbbbbb", "#5cb85c"]), vmin=0, vmax=1,
              aspect="auto")
    for (i, j), value in np.ndenumerate(status):
        text = "n/a" if value == _NA_STATUS else "–" if np.isnan(value) else (
            "pass" if value else "fail")
        ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(CHECK_COLUMNS)), [c.replace("_", " ") for c in CHECK_COLUMNS])
    goals = [applicable_goals(row) for _, row in card.iterrows()]
    ax.set_yticks(range(len(labels)), [f"{lab} ({g}/{n})" for lab, g, n in
                                       zip(labels, card["goals_met"], goals)])
    ax.set_title("Faithfulness scorecard: five checks\n"
                 "(thresholds in configs/evaluate.yaml, scorecard:)")
    fig.tight_layout()
    return save(fig, out_png, dpi=110)


def perturbation_figure(curves: pd.DataFrame, aopc: pd.DataFrame, colours: dict, floor: str,
                        out_png) -> Path:
    """Mean MoRF curves ± SE beside the AOPC ranking."""
    fig, (ax, bx) = new_figure(1, 2, figsize=(12, 4.5), width_ratios=[3, 2])
    for method, g in curves.groupby("method", sort=False):
        pct = 100 * g["fraction_removed"]
        se = g["se_drop"].fillna(0)
        ax.plot(pct, g["mean_drop"], label=method, color=colours[method],
                ls="--" if is_floor(method, floor) else "-")
        ax.fill_between(pct, g["mean_drop"] - se, g["mean_drop"] + se, color=colours[method],
                        alpha=0.15, lw=0)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xlabel="input removed, most relevant patches first (%)",
           ylabel="mean drop of the explained logit", title="Region perturbation (MoRF)")
    ax.legend(fontsize=8)
    bx.barh(aopc["method"][::-1], aopc["aopc"][::-1], xerr=aopc["se"].fillna(0)[::-1],
            color=[colours[m] for m in aopc["method"][::-1]])
    bx.set(xlabel="AOPC (higher = more faithful)", title="AOPC ± SE")
    fig.tight_layout()
    return save(fig, out_png, dpi=120)


def randomisation_figure(table: pd.DataFrame, cascade: list, flag_spearman: float, colours: dict,
                         out_png) -> Path:
    """Similarity to the trained network's map after each cascade step (Spearman, SSIM)."""
    steps = ["trained"] + list(cascade)
    fig, axes = new_figure(1, 2, figsize=(12, 4.5), sharex=True)
    for ax, metric, label in zip(axes, ("spearman_abs", "ssim_abs"),
                                 ("Spearman rank correlation (|map|)", "SSIM (|map|, 3-D)")):
        for method, g in table.groupby("method", sort=False):
            xs = np.concatenate([[0], g["step"]])
            ys = np.concatenate([[1.0], g[metric]])
            se = np.concatenate([[0.0], g[f"{metric}_se"].fillna(0)])
            ax.errorbar(xs, ys, yerr=se, label=method, color=colours[method], marker="o", ms=3,
                        capsize=2)
        if metric == "spearman_abs":
            ax.axhline(flag_spearman, color="red", ls=":", lw=1, label="flag threshold")
        ax.set_xticks(range(len(steps)), steps, rotation=45, ha="right")
        ax.set(ylabel=label, xlabel="randomised down to (cumulative, top first)", ylim=(-0.2, 1.05))
    axes[0].set_title("Cascading randomisation (Adebayo et al. 2018)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out_png, dpi=120)


def localisation_figure(table: pd.DataFrame, colours: dict, out_png) -> Path:
    """Mass ratio and AUC per method, overall and per age bin, against the uniform/chance level."""
    methods = list(dict.fromkeys(table["method"]))
    labels = list(dict.fromkeys(table["bin"]))
    fig, axes = new_figure(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(methods)
    for ax, metric, ref, title in zip(axes, ("mass_ratio", "auc"), (1.0, 0.5),
                                      ("relevance mass ratio (1 = uniform)", "AUC (0.5 = chance)")):
        for i, method in enumerate(methods):
            g = table[table["method"] == method].set_index("bin").loc[labels]
            ax.bar(np.arange(len(labels)) + (i - (len(methods) - 1) / 2) * width, g[metric],
                   width, yerr=g[f"{metric}_se"].fillna(0), color=colours[method], label=method)
        ax.axhline(ref, color="grey", ls="--", lw=1)
        ax.set_xticks(range(len(labels)), ["all" if b == "all" else f"bin {b}" for b in labels])
        ax.set(title=title, xlabel="age bin")
    axes[0].legend(fontsize=8)
    fig.suptitle("Localisation of the synthetic ageing ground truth")
    fig.tight_layout()
    return save(fig, out_png, dpi=120)


def methods_figure(x: np.ndarray, maps: dict, title: str, out_png) -> Path:
    """One input's maps side by side (axial and coronal mid-slices, |map| scaled to its maximum)."""
    names = list(maps)
    vol = np.asarray(x)[..., 0]
    k, j = vol.shape[2] // 2, vol.shape[1] // 2
    fig, axes = new_figure(2, len(names) + 1, figsize=(2.3 * (len(names) + 1), 5.2),
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
    return save(fig, out_png, dpi=90)

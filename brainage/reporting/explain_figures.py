"""The explain stage's figures: subject overlays, group comparisons, region charts, conservation."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.data.cohort import bin_labels
from brainage.neuro.nifti import DisplayRange, grid_image
from brainage.reporting.canvas import new_figure, save


@dataclass(frozen=True)
class Overlay:
    """A subject's map to draw over its grey-matter image."""

    method: str
    bin: int
    subject_id: str
    map_path: Path
    image_path: str | None  # the subject's source image; None or gone: its cached volume is drawn
    row: int  # the subject's row in the cohort table (its cached volume)


def bin_captions(edges) -> dict:
    """Figure captions per bin: ``{0: "bin 0 (10-39 y)", …}``."""
    return {k: f"bin {k} ({label} y)" for k, label in enumerate(bin_labels(edges))}


def relevance_cmap(img) -> str:
    """A sequential map for non-negative relevance, a diverging one for signed maps.

    ``cold_hot`` is blue–cyan below zero and red–yellow above: the viewer's ``blue2cyan`` and
    ``redyell`` (FSLeyes: ``blue-lightblue`` and ``red-yellow``).
    """
    return "cold_hot" if float(np.min(np.asarray(img.dataobj))) < 0 else "hot"


def header_style(img) -> dict:
    """nilearn's threshold/vmax from the map's display range: the figure shows what a viewer shows."""
    display = DisplayRange.of(img)
    return dict(threshold=display.cal_min or None, vmax=display.cal_max or None,
                cmap=relevance_cmap(img))


def subject_overlay(map_img, bg_img, title: str, out_png) -> Path:
    """Relevance over the subject's GM image: orthogonal view above an axial mosaic."""
    from nilearn import plotting

    fig, axes = new_figure(2, 1, figsize=(11, 6.5))
    style = dict(black_bg=True, **header_style(map_img))
    plotting.plot_stat_map(map_img, bg_img=bg_img, display_mode="ortho", axes=axes[0],
                           title=title, annotate=True, draw_cross=False, **style)
    plotting.plot_stat_map(map_img, bg_img=bg_img, display_mode="z", cut_coords=7, axes=axes[1],
                           annotate=False, colorbar=False, **style)
    return save(fig, out_png, facecolor="black")


def group_comparison(paths: dict, bins: list, labels: dict, title: str, out_png) -> Path:
    """Group maps of the given bins side by side: glass brain and axial mosaic per bin."""
    import nibabel as nib
    from nilearn import plotting

    fig, axes = new_figure(2, len(bins), figsize=(7 * len(bins), 6), squeeze=False)
    imgs = [nib.load(str(paths[k])) for k in bins]
    # One scale for the bins compared: the widest of their display ranges.
    styles = [header_style(img) for img in imgs]
    vmax = max((s["vmax"] for s in styles if s["vmax"]), default=None)
    threshold = min((s["threshold"] for s in styles if s["threshold"]), default=None)
    for col, (k, img, style) in enumerate(zip(bins, imgs, styles)):
        cmap = style["cmap"]
        plotting.plot_glass_brain(img, axes=axes[0, col], title=f"{labels[k]} — {title}",
                                  vmax=vmax, threshold=threshold, colorbar=True,
                                  plot_abs=cmap != "cold_hot", cmap=cmap, black_bg=True)
        plotting.plot_stat_map(img, display_mode="z", cut_coords=5, axes=axes[1, col], vmax=vmax,
                               annotate=False, colorbar=False, black_bg=True, cmap=cmap,
                               threshold=threshold)
    return save(fig, out_png, facecolor="black")


def top_regions_chart(summary: pd.DataFrame, method: str, labels: dict, top_k: int, out_png) -> Path:
    """Per bin, the ``top_k`` regions by mean share of relevance (± SD across subjects)."""
    sub = summary[(summary["method"] == method) & summary["rank"].notna()]
    bins = sorted(sub["bin"].unique())
    fig, axes = new_figure(1, len(bins), figsize=(5.5 * len(bins), 0.35 * top_k + 1.5),
                           squeeze=False)
    for ax, k in zip(axes[0], bins):
        top = sub[sub["bin"] == k].nsmallest(top_k, "rank")[::-1]
        ax.barh(top["region"], 100 * top["mean_share"], xerr=100 * top["sd_share"].fillna(0),
                color="tab:red", alpha=0.8)
        ax.set_title(f"{labels[k]}: top {top_k} regions")
        ax.set_xlabel("share of relevance (%)")
    fig.suptitle(f"{method}: relevance per atlas region")
    fig.tight_layout()
    return save(fig, out_png)


def conservation_chart(conservation: pd.DataFrame, out_png) -> Path:
    """Histogram per method of log10 |ΣR − logit| / |logit|."""
    fig, ax = new_figure(figsize=(7, 3.5))
    for method, g in conservation.groupby("method"):
        err = np.clip(g["rel_error"].to_numpy(), 1e-12, None)
        ax.hist(np.log10(err), bins=30, alpha=0.6, label=method)
    ax.set_xlabel("log10 relative conservation error |ΣR − logit| / |logit|")
    ax.set_ylabel("maps")
    ax.legend()
    fig.tight_layout()
    return save(fig, out_png)


def make_figures(work: Path, prep, methods: list, overlays: list, group_paths: dict,
                 region_summary, conservation, atlas_name: str, top_k: int,
                 captions: dict | None = None) -> list:
    """All figures of the report, in ``work/figures``; returns ``(caption, relative path)`` pairs.

    ``overlays``: one :class:`Overlay` figure each; ``prep`` (the cohort) gives the bin captions
    and the backgrounds of subjects whose source image is gone. ``captions`` ``{group: text}``
    replace the bin captions (a regression's gap groups).
    """
    labels = captions or bin_captions(prep.bin_edges)
    figures = overlay_figures(work, prep, overlays, labels)
    for method in methods:
        figures += method_figures(work, method, group_paths, region_summary, labels, atlas_name,
                                  top_k)
    out = conservation_chart(conservation, work / "figures" / "conservation.png")
    figures.append(("Conservation: relative error of every map", out.relative_to(work)))
    return figures


def overlay_figures(work: Path, prep, overlays: list, labels: dict) -> list:
    import nibabel as nib
    from tqdm.auto import tqdm


    figures = []
    for o in tqdm(overlays, desc="figures", unit="fig", disable=len(overlays) < 10):
        bg = (nib.load(o.image_path) if o.image_path and Path(o.image_path).is_file()
              else grid_image(prep.grid, prep.volumes[o.row]))
        out = subject_overlay(nib.load(str(o.map_path)), bg,
                              f"{o.subject_id} ({labels[o.bin]}) — {o.method}",
                              work / "figures" / f"{o.subject_id}_{o.method}.png")
        figures.append((f"{o.subject_id}, {labels[o.bin]}: {o.method} relevance over the "
                        "subject's GM image", out.relative_to(work)))
    return figures


def method_figures(work: Path, method: str, group_paths: dict, region_summary, labels: dict,
                   atlas_name: str, top_k: int) -> list:
    """Youngest vs oldest group map (where both exist) and the top-regions chart of a method."""
    figures = []
    bins = sorted(k for m, k in group_paths if m == method)
    if len(bins) >= 2:
        pair = [bins[0], bins[-1]]
        out = group_comparison({k: group_paths[(method, k)] for k in pair}, pair, labels, method,
                               work / "figures" / f"group_{method}.png")
        what = "youngest vs oldest bin" if "bin" in labels[pair[0]] else \
            f"{labels[pair[0]]} vs {labels[pair[-1]]}"
        figures.append((f"{method}: mean relevance share, {what}",
                        out.relative_to(work)))
    out = top_regions_chart(region_summary, method, labels, top_k,
                            work / "figures" / f"regions_{method}_{atlas_name}.png")
    per = "age bin" if all("bin" in text for text in labels.values()) else "group"
    figures.append((f"{method}: top {top_k} {atlas_name} regions per {per}", out.relative_to(work)))
    return figures

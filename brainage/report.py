"""Figures and the offline HTML report of the explain stage."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cmap(img) -> str:
    """A sequential map for non-negative relevance, a diverging one for signed maps."""
    return "cold_hot" if float(np.min(np.asarray(img.dataobj))) < 0 else "hot"


def subject_overlay(map_img, bg_img, title: str, out_png) -> Path:
    """Relevance over the subject's GM image: orthogonal view above an axial mosaic."""
    from nilearn import plotting

    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5))
    vmax = float(map_img.header["cal_max"]) or None
    style = dict(vmax=vmax, black_bg=True, threshold=vmax * 0.05 if vmax else None,
                 cmap=_cmap(map_img))
    plotting.plot_stat_map(map_img, bg_img=bg_img, display_mode="ortho", axes=axes[0],
                           title=title, annotate=True, draw_cross=False, **style)
    plotting.plot_stat_map(map_img, bg_img=bg_img, display_mode="z", cut_coords=7, axes=axes[1],
                           annotate=False, colorbar=False, **style)
    fig.savefig(out_png, dpi=90, facecolor="black")
    plt.close(fig)
    return Path(out_png)


def group_comparison(paths: dict, bins: list, labels: dict, title: str, out_png) -> Path:
    """Group maps of the given bins side by side: glass brain and axial mosaic per bin."""
    import nibabel as nib
    from nilearn import plotting

    plt = _plt()
    fig, axes = plt.subplots(2, len(bins), figsize=(7 * len(bins), 6), squeeze=False)
    imgs = [nib.load(str(paths[k])) for k in bins]
    vmax = max(float(np.percentile(np.abs(np.asarray(i.dataobj))[np.asarray(i.dataobj) != 0], 99.5))
               if np.any(np.asarray(i.dataobj)) else 1e-9 for i in imgs)
    for col, (k, img) in enumerate(zip(bins, imgs)):
        signed = _cmap(img) == "cold_hot"
        plotting.plot_glass_brain(img, axes=axes[0, col], title=f"{labels[k]} — {title}",
                                  vmax=vmax, colorbar=True, plot_abs=not signed, cmap=_cmap(img),
                                  black_bg=True)
        plotting.plot_stat_map(img, display_mode="z", cut_coords=5, axes=axes[1, col], vmax=vmax,
                               annotate=False, colorbar=False, black_bg=True, cmap=_cmap(img),
                               threshold=vmax * 0.05)
    fig.savefig(out_png, dpi=90, facecolor="black")
    plt.close(fig)
    return Path(out_png)


def top_regions_chart(summary: pd.DataFrame, method: str, labels: dict, top_k: int, out_png) -> Path:
    plt = _plt()
    sub = summary[(summary["method"] == method) & summary["rank"].notna()]
    bins = sorted(sub["bin"].unique())
    fig, axes = plt.subplots(1, len(bins), figsize=(5.5 * len(bins), 0.35 * top_k + 1.5),
                             squeeze=False)
    for ax, k in zip(axes[0], bins):
        top = sub[sub["bin"] == k].nsmallest(top_k, "rank")[::-1]
        ax.barh(top["region"], 100 * top["mean_share"], xerr=100 * top["sd_share"].fillna(0),
                color="tab:red", alpha=0.8)
        ax.set_title(f"{labels[k]}: top {top_k} regions")
        ax.set_xlabel("share of relevance (%)")
    fig.suptitle(f"{method}: relevance per atlas region")
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return Path(out_png)


def conservation_chart(conservation: pd.DataFrame, out_png) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for method, g in conservation.groupby("method"):
        err = np.clip(g["rel_error"].to_numpy(), 1e-12, None)
        ax.hist(np.log10(err), bins=30, alpha=0.6, label=method)
    ax.set_xlabel("log10 relative conservation error |ΣR − logit| / |logit|")
    ax.set_ylabel("maps")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return Path(out_png)


def bin_labels(edges) -> dict:
    """Figure captions per bin: ``{0: "bin 0 (10-39 y)", …}``."""
    from brainage.data.cohort import bin_labels as age_ranges

    return {k: f"bin {k} ({label} y)" for k, label in enumerate(age_ranges(edges))}


def make_figures(work: Path, prep, methods: list, overlays: list, group_paths: dict,
                 region_summary, conservation, atlas_name: str, top_k: int) -> list:
    """All figures of the report; returns ``(caption, relative path)`` pairs.

    ``overlays`` lists ``(method, bin, subject, row, map path)``: one overlay figure each.
    """
    import nibabel as nib
    from tqdm.auto import tqdm

    labels = bin_labels(prep.bin_edges)
    figures = []
    for method, k, sid, row, map_path in tqdm(overlays, desc="figures", unit="fig",
                                              disable=len(overlays) < 10):
        path = prep.table["path"][row] if "path" in prep.table else ""
        bg = nib.load(path) if path and Path(path).is_file() else \
            nib.Nifti1Image(prep.grid.uncrop(np.asarray(prep.volumes[row], np.float32)), prep.grid.affine)
        out = work / "figures" / f"{sid}_{method}.png"
        subject_overlay(nib.load(str(map_path)), bg, f"{sid} ({labels[k]}) — {method}", out)
        figures.append((f"{sid}, {labels[k]}: {method} relevance over the subject's GM image",
                        out.relative_to(work)))
    for method in methods:
        bins = sorted(k for m, k in group_paths if m == method)
        if len(bins) >= 2:
            pair = [bins[0], bins[-1]]
            out = work / "figures" / f"group_{method}.png"
            group_comparison({k: group_paths[(method, k)] for k in pair}, pair, labels, method, out)
            figures.append((f"{method}: mean relevance share, youngest vs oldest bin",
                            out.relative_to(work)))
        out = work / "figures" / f"regions_{method}_{atlas_name}.png"
        top_regions_chart(region_summary, method, labels, top_k, out)
        figures.append((f"{method}: top {top_k} {atlas_name} regions per age bin",
                        out.relative_to(work)))
    out = work / "figures" / "conservation.png"
    conservation_chart(conservation, out)
    figures.append(("Conservation: relative error of every map", out.relative_to(work)))
    return figures


def _table_html(df: pd.DataFrame, floatfmt="{:.4g}") -> str:
    return df.to_html(index=False, float_format=lambda v: floatfmt.format(v), border=0,
                      classes="tbl")


def write_html(work: Path, summary: dict, figures: list, conservation: pd.DataFrame,
               region_summary: pd.DataFrame, group_paths: dict, subjects: pd.DataFrame,
               traces: list) -> Path:
    """``report.html``: self-contained apart from the figure files beside it; opens offline."""
    import nibabel as nib
    from nilearn import plotting

    viewers = []
    for (method, k), path in sorted(group_paths.items()):
        view = plotting.view_img(nib.load(str(path)), threshold="90%", symmetric_cmap=True,
                                 title=f"{method} bin {k}", black_bg=True)
        name = f"group/{method}_bin{k}_viewer.html"
        view.save_as_html(str(work / name))
        viewers.append((f"{method}, bin {k}", name))

    cons = (conservation.groupby(["method", "target"])
            .agg(maps=("rel_error", "size"), median_rel_error=("rel_error", "median"),
                 max_rel_error=("rel_error", "max"), mean_negative_share=("negative_share", "mean"))
            .reset_index())
    top = region_summary[region_summary["rank"].notna() & (region_summary["rank"] <= 5)]
    acc = float((subjects["predicted"] == subjects["bin"]).mean()) if len(subjects) else float("nan")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>brainage explain report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "img{max-width:100%;border:1px solid #ccc}.tbl{border-collapse:collapse;font-size:90%}"
        ".tbl td,.tbl th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "iframe{width:100%;height:420px;border:0}</style></head><body>",
        "<h1>Relevance report</h1>",
        f"<p>Training run: <code>{html.escape(summary['train_dir'])}</code><br>"
        f"Methods: {html.escape(', '.join(summary['methods']))}; targets: "
        f"{html.escape(', '.join(map(str, summary['targets'])))}; atlas: {html.escape(summary['atlas'])}<br>"
        f"{summary['n_subjects']} subjects explained ({acc:.0%} classified correctly), "
        f"{summary['n_maps']} maps, {summary['seconds']} s.</p>",
        "<h2>Conservation</h2><p>Relevance should sum to the explained logit; rel_error = "
        "|ΣR − logit| / |logit|.</p>", _table_html(cons),
        "<h2>Figures</h2>",
    ]
    for caption, rel in figures:
        parts.append(f"<figure><img src='{html.escape(str(rel))}' alt='{html.escape(caption)}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("<h2>Interactive group maps</h2><p>Each viewer is a standalone page "
                 "(no server needed).</p>")
    for caption, rel in viewers:
        parts.append(f"<h3>{html.escape(caption)}</h3><iframe src='{html.escape(rel)}'></iframe>"
                     f"<p><a href='{html.escape(rel)}'>open full page</a></p>")
    parts += ["<h2>Top regions per bin</h2>",
              _table_html(top[["method", "bin", "rank", "region", "mean_share", "sd_share",
                               "n_subjects"]]),
              "<h2>Subjects</h2>", _table_html(subjects)]
    if traces:
        parts.append("<h2>Conservation trace (first batch)</h2><p>Relevance sum entering each "
                     "layer, per input: where it changes, relevance leaks.</p>")
        seen = set()
        for t in traces:
            if t["method"] in seen:
                continue
            seen.add(t["method"])
            rows = [{"layer": k, "relevance_sums": ", ".join(f"{v:.5g}" for v in np.ravel(vals))}
                    for k, vals in t["trace"].items()]
            parts += [f"<h3>{html.escape(t['method'])}</h3>", _table_html(pd.DataFrame(rows))]
    parts.append("</body></html>")
    out = work / "report.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out

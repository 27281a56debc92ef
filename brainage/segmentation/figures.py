"""The U-Net figure: GM, label, prediction and each method's relevance through the structure."""
from __future__ import annotations

import numpy as np

VIEWS = (("coronal", 1), ("axial", 2))  # (name, array axis cut) through the label's centre


def _panel(ax, image, title, cmap="gray", vmin=0.0, vmax=1.0, contour=None):
    ax.imshow(image.T, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if contour is not None and contour.any():
        ax.contour(contour.T.astype(float), levels=[0.5], colors="lime", linewidths=0.7)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def region_figure(gm, label, predicted, maps: dict, title: str):
    """Two rows (coronal and axial slices through the label's centre of mass), columns: the GM map,
    the label and the prediction over it, then each method's relevance map (signed, symmetric
    colour scale at its 99.5th percentile of |R|).

    Parameters
    ----------
    gm : array (*box)
    label, predicted : bool arrays (*box)
    maps : dict of str to array (*box)
        Relevance map by column title.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    centre = np.round(np.argwhere(label).mean(axis=0)).astype(int) if label.any() else \
        np.asarray(label.shape) // 2
    n_cols = 3 + len(maps)
    fig = Figure(figsize=(2.0 * n_cols, 4.6))
    axes = fig.subplots(len(VIEWS), n_cols, squeeze=False)
    for r, (view, axis) in enumerate(VIEWS):
        cut = [slice(None)] * 3
        cut[axis] = int(centre[axis])
        cut = tuple(cut)
        _panel(axes[r, 0], gm[cut], f"GM ({view})")
        _panel(axes[r, 1], gm[cut], "label", contour=label[cut])
        _panel(axes[r, 2], predicted[cut].astype(float), "prediction", cmap="Greens",
               contour=label[cut])
        for c, (name, volume) in enumerate(maps.items(), start=3):
            top = float(np.percentile(np.abs(volume), 99.5)) or 1.0
            _panel(axes[r, c], volume[cut], name, cmap="RdBu_r", vmin=-top, vmax=top)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig

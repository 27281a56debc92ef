"""Matplotlib figures without pyplot: no global backend switch, no figure left open.

A :class:`matplotlib.figure.Figure` made directly renders with the Agg canvas when saved and is
freed with its last reference, so library code never touches pyplot's state (a notebook's backend
and open figures stay as they were).
"""
from __future__ import annotations

from pathlib import Path


def new_figure(nrows: int = 1, ncols: int = 1, figsize=(6.4, 4.8), facecolor=None, **subplots):
    """A figure and its axes, as ``plt.subplots`` returns them, without pyplot.

    Parameters
    ----------
    nrows, ncols : int
        Grid of axes; ``nrows = ncols = 0`` gives a figure without axes.
    **subplots
        Passed to :meth:`matplotlib.figure.Figure.subplots` (``squeeze``, ``sharex``,
        ``width_ratios`` …).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, facecolor=facecolor)
    if nrows == 0 or ncols == 0:
        return fig, None
    return fig, fig.subplots(nrows, ncols, **subplots)


def save(fig, path, dpi: int = 90, **savefig) -> Path:
    """Write ``fig`` to ``path`` (the format from its suffix); returns the path."""
    fig.savefig(path, dpi=dpi, **savefig)
    return Path(path)

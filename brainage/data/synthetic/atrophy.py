"""The ageing model applied voxel by voxel: regional loss and cortical thinning of the GM template.

Each GM voxel loses ``l(x, a) = effect_scale * f(x) * L(a)`` of its probability (the factor ``f`` of
its region, the curve ``L`` of :mod:`~brainage.data.synthetic.ageing`). In cortex the probability
``p`` also becomes ``p ** (1 + thinning * l)``: partial-volume voxels at the GM boundary lose more
than the core of the ribbon, an erosion of the thin cortical ribbon. A planted cohort's subjects
also keep ``1 - depth * dose`` of the aged GM in the planted voxels (:mod:`.plant`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainage.data.synthetic.ageing import CURVES, DEFAULT_EFFECT
from brainage.data.synthetic.plant import planted_depth


@dataclass
class LossMaps:
    """Per-voxel multipliers of the age curves and of thinning, over the voxels with GM.

    Attributes
    ----------
    index : int array
        Flat indices (into the grid) of the voxels with GM > 0; the other arrays follow them.
    log_gm : float32 array
        Log of the template's GM probability.
    cortical, accelerating : float32 array
        ``effect_scale * factor`` of the voxel's region for each curve of :data:`CURVES`.
    thinning : float32 array
        ``thinning`` in neocortex, 0 elsewhere.
    planted : float32 array or None
        The plant's ``depth`` in planted voxels, 0 elsewhere; None without a plant.
    """

    index: np.ndarray
    log_gm: np.ndarray
    cortical: np.ndarray
    accelerating: np.ndarray
    thinning: np.ndarray
    planted: np.ndarray | None = None


def loss_maps(anatomy, settings) -> LossMaps:
    """Per-voxel effect multipliers of the ageing model (computed once per cohort).

    Parameters
    ----------
    anatomy : Anatomy
    settings : SyntheticSettings

    Returns
    -------
    LossMaps
    """
    table = anatomy.label_table.set_index("index")
    lut_size = int(max(table.index.max(), anatomy.labels.max())) + 1
    factor = {curve: np.zeros(lut_size, dtype=np.float32) for curve in CURVES}
    cortex = np.zeros(lut_size, dtype=np.float32)
    factor[DEFAULT_EFFECT.curve][0] = DEFAULT_EFFECT.factor  # GM outside every atlas label
    for index, row in table.iterrows():
        factor[row["curve"]][index] = row["factor"]
        cortex[index] = float(row["cortex"])
    gm = anatomy.gm.ravel()
    index = np.flatnonzero(gm > 0)
    labels = anatomy.labels.ravel()[index]
    scale = np.float32(settings.effect_scale)
    return LossMaps(
        index=index,
        log_gm=np.log(gm[index]),
        cortical=scale * factor["cortical"][labels],
        accelerating=scale * factor["accelerating"][labels],
        thinning=np.float32(settings.thinning) * cortex[labels],
        planted=None if settings.planted is None else planted_depth(anatomy, settings.planted, index),
    )


def relative_loss(maps: LossMaps, age: float) -> np.ndarray:
    """Fractional GM loss of each GM voxel at ``age`` relative to age 20 (before thinning)."""
    return (maps.cortical * np.float32(CURVES["cortical"].loss(age))
            + maps.accelerating * np.float32(CURVES["accelerating"].loss(age)))


def atrophied_gm(anatomy, maps: LossMaps, age: float, dose: float = 0.0) -> np.ndarray:
    """The template aged to ``age``: regional loss and thinning, on the anatomy's grid (float32).

    Parameters
    ----------
    anatomy : Anatomy
    maps : LossMaps
        From the same anatomy.
    age : float
        The age that drives ageing (a planted cohort's nuisance age).
    dose : float
        Dose of the plant, 0 to 1: planted voxels keep ``1 - depth * dose`` (``maps.planted``).

    Returns
    -------
    float32 array of ``anatomy.shape``.
    """
    loss = np.clip(relative_loss(maps, age), -0.2, 0.9)
    aged = np.exp(maps.log_gm * (1.0 + maps.thinning * loss)) * (1.0 - loss)
    if dose and maps.planted is not None:
        aged *= np.float32(1.0) - maps.planted * np.float32(dose)
    out = np.zeros(anatomy.gm.size, dtype=np.float32)
    out[maps.index] = aged
    return out.reshape(anatomy.shape)

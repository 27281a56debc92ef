"""Each subject's deformation, read back from a written cohort: carry template-space maps onto subjects.

A subject's image is the aged template sampled at its pull-back coordinates
(:func:`~brainage.data.synthetic.render.source_coordinates`: head size, rotation, translation, DCT
warp and ventricle displacement). The draw behind them is a pure function of the cohort's record
(``cohort.json``: seed, parameters, grid, explicit ages) and the subject's position, so it can be
redrawn exactly, and any map on the template grid — an atlas label map — warped with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainage.data.synthetic.participants import draw_participants
from brainage.data.synthetic.record import read_cohort_record
from brainage.data.synthetic.render import SubjectDraw, draw_subjects, source_coordinates
from brainage.data.synthetic.settings import SyntheticSettings
from brainage.errors import DataError
from brainage.neuro.grid import Grid


@dataclass(frozen=True)
class CohortDraws:
    """A written cohort's generator settings, grid and every subject's draw.

    Attributes
    ----------
    settings : SyntheticSettings
    grid : Grid
        The cohort's source grid (no crop).
    draws : dict of str to SubjectDraw
        By subject id.
    """

    settings: SyntheticSettings
    grid: Grid
    draws: dict


def cohort_draws(root) -> CohortDraws:
    """Redraw every subject of the synthetic cohort in ``root`` from its ``cohort.json``.

    Parameters
    ----------
    root : str or Path

    Returns
    -------
    CohortDraws

    Raises
    ------
    DataError
        When ``root`` holds no synthetic cohort record, or its participants table does not list the
        subjects the record redraws (a table edited after generation).
    """
    root = Path(root)
    record = read_cohort_record(root)
    if record is None or record.get("generator") != "brainage.data.synthetic":
        raise DataError(f"{root} holds no synthetic cohort record (cohort.json): subject "
                        "deformations exist only for cohorts written by brainage.data.synthetic")
    settings = SyntheticSettings.from_dict(record["parameters"])
    grid = Grid.build(np.asarray(record["grid"]["affine"]), record["grid"]["shape"])
    table, sites = draw_participants(int(record["n_subjects"]), settings, record["ages"])
    _check_table(root, table)
    return CohortDraws(settings, grid, dict(draw_subjects(table, sites, settings)))


def _check_table(root: Path, table) -> None:
    import pandas as pd

    path = root / "participants.tsv"
    written = pd.read_csv(path, sep="\t", dtype={"subject_id": str})
    if written["subject_id"].tolist() != table["subject_id"].tolist():
        raise DataError(f"{path} does not list the subjects its cohort.json redraws (edited after "
                        "generation?): their deformations cannot be reproduced")


def warp_to_subject(volume: np.ndarray, anatomy, draw: SubjectDraw, settings, box=None,
                    order: int = 1) -> np.ndarray:
    """A map on the template grid carried onto one subject, as the generator carries the GM template.

    Parameters
    ----------
    volume : array on ``anatomy``'s grid
    anatomy : Anatomy
        From :func:`~brainage.data.synthetic.anatomy.build_anatomy` on the cohort's grid.
    draw : SubjectDraw
    settings : SyntheticSettings
    box : tuple of slice or None
        Only this box of the subject's grid (a crop); None: the whole grid.
    order : int
        Spline order: 1 (linear, for a probability or an indicator to threshold), 0 (labels).

    Returns
    -------
    float32 array shaped like the box, 0 outside the template grid.
    """
    from scipy import ndimage

    coords = source_coordinates(anatomy, draw, settings, box)
    return ndimage.map_coordinates(np.asarray(volume, dtype=np.float32), coords, order=order,
                                   mode="constant", cval=0.0, output=np.float32)

"""The model's outputs for every subject, batch by batch, and a relevance map per subject.

Each map explains the model's prediction (``target=predicted``: the predicted bin's logit, or
the predicted age) and is written as ``make explain`` writes its maps
(``maps/<subject>_<method>_predicted.nii.gz``: float32 on the subject's own grid, the crop
undone, the input image's sform and qform, a display range over the subject's brain, the method's
evaluate verdict in ``descrip``). Their mean, each map divided by its sum as ``make explain``'s
group maps are, is ``group/<method>_mean.nii.gz``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainage.data.reference_images import mean_image
from brainage.data.whole_cohort import WholeCohort
from brainage.neuro.nifti import (
    DisplayRange,
    DisplayRule,
    MapLabel,
    display_range,
    reference_header,
    relevance_image,
    save_atomic,
)

TARGET = "predicted"


@dataclass
class MapWriter:
    """Writes each subject's map of one method and adds it to their mean.

    Attributes
    ----------
    method : str
    analyzer : object or None
        The method's analyzer on the model (:func:`brainage.trained.load_analyzers`); None where
        the caller explains and hands the maps to :meth:`save` (an ensemble's writer).
    cohort : WholeCohort
    work : Path
        The run's work folder; maps go to ``maps/``, the mean to ``group/``.
    rule : DisplayRule
    checks : str
        The method's evaluate verdict, for ``descrip``.
    source : str
        The training run's name, for ``descrip``.
    """

    method: str
    analyzer: object
    cohort: WholeCohort
    work: Path
    rule: DisplayRule
    checks: str
    source: str
    paths: list = field(default_factory=list)  # the maps written, in order
    _sum: np.ndarray | None = field(default=None, init=False, repr=False)  # normalised maps' sum
    _n: int = field(default=0, init=False, repr=False)

    def write(self, x: np.ndarray, rows: np.ndarray) -> None:
        """Explain the batch ``x`` (the cohort's ``rows``) and write one map per subject."""
        explanation = self.analyzer.explain(x, target=TARGET)
        self.save(x, rows, np.asarray(explanation.maps)[..., 0], np.asarray(explanation.target))

    def save(self, x: np.ndarray, rows: np.ndarray, maps: np.ndarray, classes: np.ndarray) -> None:
        """Write the maps of the batch ``x`` (the cohort's ``rows``; ``classes`` explained) and
        add each to their mean."""
        for j, row in enumerate(rows):
            label = MapLabel(self.method, f"{TARGET}:class{int(classes[j])}", checks=self.checks,
                             source=self.source)
            display = display_range(maps[j], self.rule.brain_mask(x[j, ..., 0]), self.rule)
            self.paths.append(self.save_map(row, maps[j], label, display, TARGET))
            total = float(maps[j].sum())
            if total != 0:  # an all-zero map has no shares to add
                self._sum = (0 if self._sum is None else self._sum) \
                    + maps[j].astype(np.float64) / total
                self._n += 1

    def save_map(self, row: int, volume: np.ndarray, label: MapLabel, display: DisplayRange,
                 suffix: str) -> Path:
        """``maps/<subject>_<method>_<suffix>.nii.gz`` of the cohort's ``row``, on its grid with
        its image's header."""
        table, grid = self.cohort.table, self.cohort.grid
        sid = str(table["subject_id"].iloc[row])
        header = reference_header(_image_path(table, row), grid)
        img = relevance_image(volume, grid, header, label, display)
        return save_atomic(img, self.work / "maps" / f"{sid}_{self.method}_{suffix}.nii.gz")

    def write_mean(self) -> Path | None:
        """``group/<method>_mean.nii.gz``; None when every map summed to zero."""
        if not self._n:
            return None
        mean = (self._sum / self._n).astype(np.float32)
        brain = self.rule.brain_mask(mean_image(self.cohort, np.arange(len(self.cohort.table))))
        label = MapLabel(self.method, TARGET, checks=self.checks,
                         what=f"mean share n={self._n}")
        img = relevance_image(mean, self.cohort.grid, None, label,
                              display_range(mean, brain, self.rule))
        return save_atomic(img, self.work / "group" / f"{self.method}_mean.nii.gz")


def _image_path(table, row: int) -> str | None:
    """The subject's source image (None for a stacked-array cohort)."""
    if "path" not in table:
        return None
    path = table["path"].iloc[row]
    return str(path) if isinstance(path, str) and path else None


def cohort_batches(cohort: WholeCohort, batch_size: int, progress: bool):
    """``(x, rows)`` of every batch of the cohort, in order (``x`` shaped for the model), with a
    progress bar over subjects: the one pass over the data."""
    from tqdm.auto import tqdm

    n = len(cohort.table)
    with tqdm(total=n, desc="predicting", unit="subject", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            rows = np.arange(start, min(start + batch_size, n))
            yield np.asarray(cohort.volumes[rows], dtype=np.float32)[..., None], rows
            bar.update(len(rows))


def predict_all(model, cohort: WholeCohort, batch_size: int, writer: MapWriter | None,
                progress: bool) -> np.ndarray:
    """The model's outputs for every subject (rows of the cohort, in order), with a progress bar
    over subjects; ``writer``, if given, writes each batch's maps."""
    outputs = []
    for x, rows in cohort_batches(cohort, batch_size, progress):
        outputs.append(np.asarray(model.predict(x, verbose=0)))
        if writer is not None:
            writer.write(x, rows)
    return np.concatenate(outputs)

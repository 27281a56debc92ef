"""An ensemble's outputs for every subject in one pass over the cohort, and its maps.

Each batch is read once and every member's model predicts it. With maps, every member explains
the ensemble's prediction — the logit of the *ensemble's* predicted bin (not the member's own),
or the age output — and the ensemble's map of a subject is the mean of its members' maps,
written as one run's maps are (``maps/<subject>_<method>_predicted.nii.gz``, their mean share in
``group/<method>_mean.nii.gz``). The mean is linear: for a method that conserves, it sums to the
mean of the members' explained outputs (the mean logit of that bin, or the ensemble's mean age).
Beside it, on the same grid with the same header:

* ``maps/<subject>_<method>_predicted_sd.nii.gz`` — per voxel, the SD of the members' relevance
  (``ddof=1``), its display range chosen as the maps' are;
* ``maps/<subject>_<method>_predicted_agreement.nii.gz`` — per voxel, the share of members whose
  relevance has the sign of the mean map there (0 where the mean is 0), displayed 0–1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainage.data.whole_cohort import WholeCohort
from brainage.ensemble.combine import MapSpread, ensemble_classes
from brainage.ensemble.spread_maps import AGREEMENT_RANGE, agreement_tag, sd_tag
from brainage.neuro.nifti import MapLabel, display_range
from brainage.predicting.maps import TARGET, MapWriter, cohort_batches

SD = sd_tag(TARGET)
AGREEMENT = agreement_tag(TARGET)


@dataclass
class EnsembleMapWriter:
    """Explains each batch with every member and writes the mean, SD and agreement maps.

    Attributes
    ----------
    analyzers : list
        The method's analyzer on each member's model, in member order.
    writer : MapWriter
        Writes the mean maps (without an analyzer of its own) and their group mean.
    regression : bool
    """

    analyzers: list
    writer: MapWriter
    regression: bool

    @property
    def paths(self) -> list:
        """The mean maps written, in order."""
        return self.writer.paths

    def write(self, x: np.ndarray, rows: np.ndarray, outputs: np.ndarray) -> None:
        """Explain the batch ``x`` (the cohort's ``rows``; ``outputs``: the members' outputs,
        (members, batch, outputs)) with every member and write each subject's three maps."""
        classes = ensemble_classes(outputs, self.regression)
        # target "true" with the ensemble's bins as labels: each member explains that bin's logit
        members = np.stack([np.asarray(a.explain(x, target="true", labels=classes).maps)[..., 0]
                            for a in self.analyzers])
        spreads = [MapSpread.of(members[:, j]) for j in range(len(rows))]
        self.writer.save(x, rows, np.stack([s.mean for s in spreads]), classes)
        for j, row in enumerate(rows):
            self._save_spread(x[j, ..., 0], row, spreads[j], int(classes[j]))

    def _save_spread(self, volume: np.ndarray, row: int, spread: MapSpread, target: int) -> None:
        w, n = self.writer, len(self.analyzers)

        def label(what):
            return MapLabel(w.method, f"{TARGET}:class{target}", checks=w.checks, what=what,
                            source=w.source)

        sd_range = display_range(spread.sd, w.rule.brain_mask(volume), w.rule)
        w.save_map(row, spread.sd, label(f"sd of {n} members"), sd_range, SD)
        w.save_map(row, spread.agreement, label(f"sign agreement of {n} members"),
                   AGREEMENT_RANGE, AGREEMENT)

    def write_mean(self):
        """The group mean of the ensemble's maps (:meth:`MapWriter.write_mean`)."""
        return self.writer.write_mean()


def predict_members(models: list, cohort: WholeCohort, batch_size: int,
                    writer: EnsembleMapWriter | None, progress: bool) -> np.ndarray:
    """Every member's outputs for every subject, (members, subjects, outputs), reading each batch
    once; ``writer``, if given, writes each batch's maps."""
    outputs = []
    for x, rows in cohort_batches(cohort, batch_size, progress):
        batch = np.stack([np.asarray(model.predict(x, verbose=0)) for model in models])
        outputs.append(batch)
        if writer is not None:
            writer.write(x, rows, batch)
    return np.concatenate(outputs, axis=1)

"""A planted signal in real grey matter: real anatomy and its variability as the distractor.

``data.plant_into`` (``configs/data/ixi_planted.yaml``) names a real cohort that ``make
preprocess`` made: the raw root it read, its ``derivatives_dir`` and which map (``modulated``).
On first use the data stage writes, at ``data.root``, a cohort in the ``nifti`` format from it
(:func:`ensure_planted_real`):

- every subject with a map gets a class drawn at random, balanced over the age bins of
  ``data.bin_edges`` and seeded by ``plant_into.seed``, independent of its anatomy and real age;
  its label ``age`` is drawn uniformly inside that bin;
- it keeps ``1 - depth * k / (n_bins - 1)`` of its grey matter (class ``k``) in the voxels of the
  planted regions (``plant_into.planted``, as ``data.synthetic.planted``: Neuromorphometrics
  regions, template grey matter), on the 1.5 mm MNI grid after registration. Nothing else changes.

``participants.tsv`` holds ``subject_id``, ``age`` (the label), ``planted_dose``, ``real_age``
and ``sex``; ``ground_truth/`` holds ``planted.nii.gz`` (the planted voxels), ``planted_regions
.csv``, ``regions.nii.gz`` and ``regions.csv`` (role ``control``: the primary visual cortex, for
the evaluate stage's control ratio). ``cohort.json`` records the source and the plant: a
different request for the same root is refused, the same one reuses the files.
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.config_values import ConfigReader, as_is, flag, integer, real, sequence, text
from brainage.data.derivative import PARTICIPANTS, bids_label, derivative_dir, subject_file
from brainage.errors import DataError

log = logging.getLogger(__name__)

RECORD = "cohort.json"
KIND = "planted into real grey matter"


@dataclass(frozen=True)
class RealPlantSettings:
    """What ``data.plant_into`` asks for (see the module docstring)."""

    raw_root: str
    derivatives_dir: str
    modulated: bool
    seed: int
    plant: object  # PlantSettings with data.bin_edges

    @classmethod
    def from_reader(cls, data: ConfigReader) -> "RealPlantSettings | None":
        """The ``plant_into`` block of a data config; None when the key is absent or null."""
        from brainage.data.synthetic.settings import PlantSettings

        if not data.has("plant_into") or data.raw("plant_into", "a block or null") is None:
            return None
        block = data.block("plant_into", "a block: root, derivatives_dir, modulated, seed, planted")
        planted = dict(block.value("planted", as_is, "a planted block (regions, depth, dose)"))
        planted["bin_edges"] = data.value("bin_edges", sequence(real), "a list of age-bin edges")
        plant = PlantSettings.from_dict({**planted, "enabled": True})
        if plant.dose != "bins":
            raise DataError("data.plant_into.planted.dose must be bins: a real cohort's plant "
                            "decides the age bin (the linear dose is for the synthetic cohort)")
        return cls(block.value("root", text, "the raw T1 folder make preprocess read"),
                   block.value("derivatives_dir", text, "make preprocess's derivatives_dir"),
                   block.value("modulated", flag, "true or false"),
                   block.value("seed", integer, "a seed"), plant)

    @property
    def derivative(self) -> Path:
        return derivative_dir(self.raw_root, self.derivatives_dir)

    def record(self) -> dict:
        return {"kind": KIND, "derivative": str(self.derivative.resolve()),
                "modulated": self.modulated, "seed": self.seed,
                "planted": {k: list(v) if isinstance(v, tuple) else v
                            for k, v in asdict(self.plant).items()}}


def ensure_planted_real(settings: RealPlantSettings, root, progress: bool = True) -> Path:
    """Write the planted cohort at ``root`` from the derivative, or reuse the one already there.

    Raises
    ------
    DataError
        ``root`` holds another cohort, the derivative is missing, or its maps are not on one
        1.5 mm MNI grid.
    """
    root = Path(root)
    record = settings.record()
    if (root / RECORD).is_file():
        held = json.loads((root / RECORD).read_text())
        if {k: held.get(k) for k in record} == record:
            return root
        raise DataError(f"data.root={root} holds another cohort ({root / RECORD}); pick another "
                        "data.root or remove it")
    table = _subjects(settings)
    work = root.with_name(root.name + ".incomplete")
    shutil.rmtree(work, ignore_errors=True)
    (work / "gm").mkdir(parents=True)
    try:
        _write_cohort(settings, table, work, progress)
        (work / RECORD).write_text(json.dumps({**record, "n_subjects": len(table)}, indent=2))
    except BaseException:  # nothing half-written is left behind, whatever stopped it
        shutil.rmtree(work, ignore_errors=True)
        raise
    work.rename(root)
    log.info("planted %d real subjects from %s into %s", len(table), settings.derivative, root)
    return root


def _subjects(settings: RealPlantSettings) -> pd.DataFrame:
    """The derivative's subjects that have a map: ``subject_id``, ``real_age``, ``sex``, ``path``."""
    derivative = settings.derivative
    if not (derivative / PARTICIPANTS).is_file():
        raise DataError(f"data.plant_into: no preprocessed grey matter of {settings.raw_root} "
                        f"({derivative / PARTICIPANTS} missing); make it with `make preprocess "
                        f"data.root={settings.raw_root}`")
    table = pd.read_csv(derivative / PARTICIPANTS, sep="\t")
    kind = "modulated" if settings.modulated else "unmodulated"
    ids = [bids_label(s) for s in table["participant_id"]]
    paths = [subject_file(derivative, s, kind) for s in ids]
    have = np.array([p.is_file() for p in paths])
    if not have.any():
        raise DataError(f"data.plant_into: {derivative} holds no {kind} grey-matter map")
    if not have.all():
        log.info("data.plant_into: %d subjects of %s have no map and are left out: %s",
                 (~have).sum(), derivative, ", ".join(np.array(ids)[~have]))
    out = pd.DataFrame({"subject_id": ids, "real_age": pd.to_numeric(table.get("age"),
                                                                       errors="coerce"),
                        "sex": table.get("sex", pd.Series([""] * len(table))),
                        "path": [str(p) for p in paths]})
    return out[have].reset_index(drop=True)


def drawn_labels(n: int, edges, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced classes ``0 … len(edges) - 2`` in a seeded random order, and a label age drawn
    uniformly inside each subject's bin ``[edges[k], edges[k + 1])``."""
    rng = np.random.default_rng(seed)
    n_bins = len(edges) - 1
    classes = rng.permutation(np.arange(n) % n_bins)
    low, high = np.asarray(edges[:-1], float)[classes], np.asarray(edges[1:], float)[classes]
    ages = np.floor((low + rng.random(n) * (high - low)) * 10) / 10
    return classes, ages


def _write_cohort(settings: RealPlantSettings, table: pd.DataFrame, work: Path,
                  progress: bool) -> None:
    """Every subject's planted map, the participants table and the ground truth into ``work``."""
    import nibabel as nib
    from tqdm.auto import tqdm

    from brainage.data.synthetic.anatomy import build_anatomy
    from brainage.data.synthetic.plant import planted_mask
    from brainage.neuro.grid import Grid

    first = nib.load(table["path"][0])
    anatomy = build_anatomy(Grid.build(first.affine, first.shape[:3]))
    mask = planted_mask(anatomy, settings.plant)
    classes, ages = drawn_labels(len(table), settings.plant.bin_edges, settings.seed)
    doses = classes / (len(settings.plant.bin_edges) - 2)
    for row, dose in tqdm(list(zip(table.itertuples(), doses)), desc="planting real subjects",
                          unit="subject", disable=not progress):
        _plant_one(row, dose, settings.plant.depth, mask, first, work)
    table.assign(age=ages, planted_dose=doses)[
        ["subject_id", "age", "planted_dose", "real_age", "sex"]].to_csv(
        work / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    _write_truth(work / "ground_truth", anatomy, mask, settings.plant, first.affine)


def _plant_one(row, dose: float, depth: float, mask: np.ndarray, first, work: Path) -> None:
    import nibabel as nib

    from brainage.data.synthetic.ground_truth import save_mni_nifti

    img = nib.load(row.path)
    if img.shape[:3] != first.shape[:3] or not np.allclose(img.affine, first.affine, atol=1e-4):
        raise DataError(f"{row.path}: grid {img.shape} differs from the first map's "
                        f"{first.shape}; data.plant_into needs every map on one grid")
    gm = np.asarray(img.dataobj, dtype=np.float32).copy()
    gm[mask] *= np.float32(1.0 - depth * dose)
    save_mni_nifti(gm, img.affine, work / "gm" / f"{row.subject_id}_gm.nii.gz")


def _write_truth(folder: Path, anatomy, mask: np.ndarray, plant, affine) -> None:
    from brainage.data.synthetic.ground_truth import save_mni_nifti
    from brainage.data.synthetic.plant import planted_regions

    folder.mkdir()
    save_mni_nifti(mask.astype(np.uint8), affine, folder / "planted.nii.gz")
    save_mni_nifti(anatomy.labels.astype(np.int32), affine, folder / "regions.nii.gz")
    planted_regions(anatomy, plant).assign(depth=plant.depth).to_csv(
        folder / "planted_regions.csv", index=False, float_format="%.6g")
    table = anatomy.label_table
    role = np.where(table["role"] == "control", "control",
                    np.where(table["name"].isin(plant.regions), "planted", "other"))
    table[["name", "index"]].assign(role=role).to_csv(folder / "regions.csv", index=False)

"""A tiny explain run with known effects, written as real files (a helper module, not a test module).

Grid 7 × 8 × 9 with a non-identity affine (``tests.builders.AFFINE``). Four atlas regions:

* ``Left_Planted`` — relevance rises with the age bin (``planted`` per voxel in the oldest bin,
  half of it in the middle bin), GM does not change: a true relevance effect;
* ``Right_GM`` — GM density falls with the age bin and relevance *only* tracks GM
  (relevance = 1 + ``gm_gain``·(GM − 0.5) + noise): an effect that GM density explains away;
* ``Calc_Control`` and ``Other`` — nothing changes.

Method ``dtd`` carries these effects; method ``gradient`` is noise only. The training run's data
config points at a cohort with GM images, a participants table with sex and site, and a synthetic
``ground_truth/regions.csv``. ``python -m tests.inference.synthetic_runs DIR`` writes one into DIR.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from tests.builders import AFFINE, SHAPE, compose_stage, write_gm

REGIONS = {1: ("Left_Planted", (slice(1, 4), slice(1, 4), slice(1, 5))),
           2: ("Right_GM", (slice(4, 7), slice(1, 4), slice(1, 5))),
           3: ("Calc_Control", (slice(1, 4), slice(4, 8), slice(5, 9))),
           4: ("Other", (slice(4, 7), slice(4, 8), slice(5, 9)))}
ROLES = {"Left_Planted": "ageing", "Right_GM": "ageing", "Calc_Control": "control"}
METHODS = ("dtd", "gradient")
FAST = ("voxelwise.n_perm=500", "regions.n_perm=1000")
"""Permutation counts that keep the tests fast (p(FWE) resolves to 0.002 and 0.001)."""
BIN_AGES = ((18, 39), (41, 69), (71, 90))


def atlas_labels() -> np.ndarray:
    labels = np.zeros(SHAPE, np.int16)
    for index, (_, box) in REGIONS.items():
        labels[box] = index
    return labels


def _subjects(n_per_bin: int, rng) -> pd.DataFrame:
    bins = np.repeat(np.arange(3), n_per_bin)
    ages = np.array([rng.uniform(*BIN_AGES[b]) for b in bins]).round(1)
    predicted = bins.copy()
    wrong = np.concatenate([np.flatnonzero(bins == b)[:2] for b in range(3)])
    predicted[wrong] = np.where(bins[wrong] == 2, 1, bins[wrong] + 1)
    split = np.where(np.arange(len(bins)) % 2 == 0, "test", "train")
    return pd.DataFrame({"subject_id": [f"sub-{i:03d}" for i in range(len(bins))], "age": ages,
                         "bin": bins, "predicted": predicted, "split": split})


def _volumes(bin_: int, rng, planted: float, gm_drop: float, gm_gain: float, noise: float):
    """One subject's GM image and its two relevance maps."""
    gm = np.clip(0.5 + 0.05 * rng.standard_normal(SHAPE), 0, 1)
    gm[REGIONS[2][1]] -= gm_drop * bin_ / 2 + 0.03 * rng.standard_normal()
    gm[0] = 0.02  # outside the brain
    dtd = 1.0 + noise * rng.standard_normal(SHAPE)
    dtd[REGIONS[1][1]] += planted * bin_ / 2
    dtd[REGIONS[2][1]] += gm_gain * (gm[REGIONS[2][1]] - 0.5)
    gradient = 1.0 + noise * rng.standard_normal(SHAPE)
    return np.clip(gm, 0, 1), {"dtd": dtd, "gradient": gradient}


def _write_cohort(root: Path, subjects: pd.DataFrame, gms: list) -> None:
    for sid, gm in zip(subjects["subject_id"], gms):
        write_gm(root / "gm" / f"{sid}_gm.nii.gz", gm)
    sex = np.where(np.arange(len(subjects)) // 2 % 2 == 0, "F", "M")
    site = np.where(np.arange(len(subjects)) % 3 == 0, "site-B", "site-A")
    subjects[["subject_id", "age"]].assign(sex=sex, site=site).to_csv(
        root / "participants.tsv", sep="\t", index=False)
    (root / "ground_truth").mkdir()
    pd.DataFrame({"name": list(ROLES), "role": list(ROLES.values())}).to_csv(
        root / "ground_truth" / "regions.csv", index=False)


def _write_train_run(run: Path, root: Path, subjects: pd.DataFrame) -> None:
    data = {"format": "nifti", "root": str(root), "participants": str(root / "participants.tsv"),
            "image_template": "{root}/gm/{subject_id}_gm.nii.gz", "bin_edges": [10, 40, 70, 101]}
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"seed": 0, "data": data}), run / ".hydra" / "config.yaml")
    subjects[["subject_id", "age", "bin", "split"]].to_csv(run / "split.csv", index=False)


def _write_explain_run(run: Path, train: Path, subjects, maps: list, atlas: Path) -> None:
    from brainage.neuro.regions import region_lookup, region_stats

    labels_csv = atlas.with_suffix("").with_suffix(".csv")
    table = pd.DataFrame({"index": list(REGIONS), "name": [n for n, _ in REGIONS.values()]})
    ids, names = region_lookup(atlas_labels(), table)
    voxel_ml = abs(np.linalg.det(AFFINE[:3, :3])) / 1000
    rows = []
    for (sid, bin_), subject_maps in zip(subjects[["subject_id", "bin"]].itertuples(index=False),
                                         maps):
        for method, volume in subject_maps.items():
            write_gm(run / "maps" / f"{sid}_{method}_predicted.nii.gz", volume)
            stats = region_stats(volume, ids, names, voxel_ml)
            rows.append(stats.assign(subject_id=sid, bin=bin_, method=method))
    (run / "regions").mkdir()
    columns = ["subject_id", "bin", "method", "region", "n_voxels", "sum", "mean", "density", "share"]
    pd.concat(rows)[columns].to_csv(run / "regions" / "custom_subjects.csv", index=False)
    subjects.to_csv(run / "subjects.csv", index=False)
    (run / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create({"atlas": {"name": "custom", "path": str(atlas),
                                               "labels": str(labels_csv), "threshold": 25},
                                     "regions": {"merge_hemispheres": False}}),
                   run / ".hydra" / "config.yaml")
    (run / "explain.json").write_text(json.dumps({
        "train_dir": str(train), "model_path": str(train / "model.keras"), "methods": list(METHODS),
        "targets": ["predicted"], "atlas": "custom", "n_subjects": len(subjects)}))


def build_explain_run(base, n_per_bin: int = 12, planted: float = 0.75, gm_drop: float = 0.1,
                      gm_gain: float = 4.0, noise: float = 0.3, seed: int = 0) -> dict:
    """Write cohort, atlas, training run and explain run under ``base``; returns their paths."""
    base = Path(base)
    rng = np.random.default_rng(seed)
    subjects = _subjects(n_per_bin, rng)
    drawn = [_volumes(int(b), rng, planted, gm_drop, gm_gain, noise) for b in subjects["bin"]]
    root = base / "cohort"
    _write_cohort(root, subjects, [gm for gm, _ in drawn])
    atlas = write_gm(base / "atlas.nii.gz", atlas_labels())
    pd.DataFrame({"index": list(REGIONS), "name": [n for n, _ in REGIONS.values()]}).to_csv(
        base / "atlas.csv", index=False)
    train = base / "outputs" / "train" / "2026-01-01_00-00-00"
    _write_train_run(train, root, subjects)
    explain = base / "outputs" / "explain" / "2026-01-02_00-00-00"
    _write_explain_run(explain, train, subjects, [m for _, m in drawn], atlas)
    return {"base": base, "explain": explain, "train": train, "cohort": root,
            "subjects": subjects, "outputs": base / "outputs"}


def compose_infer(run: dict, *overrides):
    """The infer config reading ``run``'s outputs folder (its explain run is the newest there)."""
    return compose_stage("infer", f"outputs_dir={run['outputs']}", *FAST, *overrides)


if __name__ == "__main__":
    print(build_explain_run(sys.argv[1])["explain"])

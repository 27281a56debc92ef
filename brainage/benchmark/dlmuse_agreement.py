"""How far ``make preprocess`` agrees with an independent reference parcellation (DLMUSE).

The shared IXI scans come with DLMUSE labels on the T1's own grid, made by their authors with
their own tool. Per subject this compares the derivative's native-space brain mask and grey
matter (probability > 0.5) with DLMUSE's brain (every labelled voxel, i.e. its intracranial
volume, label 702) and grey matter (labels 100-207 plus the subcortical and cerebellar GM labels
below, whose volumes add up to DLMUSE's composite 601), and the derivative's TIV and GM volume with
DLMUSE's ``volumes.tsv`` (702 and 601). The pipeline never reads DLMUSE; only this check does.

    python -m brainage.benchmark.dlmuse_agreement --raw ../shared/data/ixi [--out agreement.csv]

prints each figure with its 95 % interval (mean: t interval over subjects; correlation: Fisher z).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import stats

from brainage.data.derivative import bids_label, derivative_dir, subject_file

# DLMUSE's single-ROI GM labels outside the cortex (100-207): accumbens, amygdala, caudate,
# cerebellar cortex, hippocampus, pallidum, putamen, thalamus, cerebellar vermis, basal forebrain.
SUBCORTICAL_GM = (23, 30, 31, 32, 36, 37, 38, 39, 47, 48, 55, 56, 57, 58, 59, 60, 71, 72, 73, 75, 76)
ICV, GM = "702", "601"
# Where the GM disagreement lies: DLMUSE's GM in three compartments (the share of each our GM
# finds) and its white matter (the share of our GM inside it).
CEREBELLAR_GM = (38, 39, 71, 72, 73)
COMPARTMENTS = {"cortex": tuple(range(100, 208)),
                "deep_gm": tuple(k for k in SUBCORTICAL_GM if k not in CEREBELLAR_GM),
                "cerebellar_gm": CEREBELLAR_GM}
WHITE_MATTER = (35, 40, 41, 61, 62, *range(81, 96))   # brain stem, cerebellar and cerebral WM, ventral DC


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def dlmuse_gm(labels: np.ndarray) -> np.ndarray:
    return ((labels >= 100) & (labels <= 207)) | np.isin(labels, SUBCORTICAL_GM)


def subject_row(derivative: Path, raw: Path, subject_id: str, volumes: pd.Series) -> dict:
    """One subject's agreement (Dice, volumes, seconds) with DLMUSE."""
    label = bids_label(subject_id)
    labels = np.asarray(nib.load(raw / "derivatives" / "dlmuse" / label / "anat" / f"{label}_dseg.nii.gz")
                        .dataobj).astype(int)
    mask = np.asarray(nib.load(subject_file(derivative, subject_id, "brain_mask")).dataobj) > 0
    gm = np.asarray(nib.load(subject_file(derivative, subject_id, "gm_native")).dataobj) > 0.5
    record = json.loads(subject_file(derivative, subject_id, "record").read_text())
    return {"subject_id": label, "brain_dice": dice(mask, labels > 0), "gm_dice": dice(gm, dlmuse_gm(labels)),
            **gm_disagreement(gm, labels, mask),
            "tiv_ml": record["volumes_ml"]["tiv_ml"], "gm_ml": record["volumes_ml"]["gm_ml"],
            "dlmuse_icv_ml": float(volumes[ICV]) / 1000.0, "dlmuse_gm_ml": float(volumes[GM]) / 1000.0,
            "seconds": record["seconds"].get("total", sum(record["seconds"].values()))}


def gm_disagreement(gm: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> dict:
    """Where our GM (boolean) and DLMUSE's differ: per compartment the share of DLMUSE's GM we
    call GM (``recall_*``) and of it the share outside our brain mask (``outside_mask_*``), and
    the share of our GM that DLMUSE calls white matter (``gm_in_wm``)."""
    found = {}
    for name, values in COMPARTMENTS.items():
        theirs = np.isin(labels, values)
        found[f"recall_{name}"] = float((gm & theirs).sum() / max(theirs.sum(), 1))
        found[f"outside_mask_{name}"] = float((theirs & ~mask).sum() / max(theirs.sum(), 1))
    found["gm_in_wm"] = float((gm & np.isin(labels, WHITE_MATTER)).sum() / max(gm.sum(), 1))
    return found


def agreement(raw, derivatives_dir="data/derivatives") -> pd.DataFrame:
    """Per subject of the derivative made from ``raw``: its agreement with DLMUSE."""
    raw = Path(raw)
    derivative = derivative_dir(raw, derivatives_dir)
    volumes = pd.read_csv(raw / "derivatives" / "dlmuse" / "volumes.tsv", sep="\t", dtype={"participant_id": str})
    volumes = volumes.set_index("participant_id")
    done = sorted(p.name for p in derivative.glob("sub-*") if subject_file(derivative, p.name, "record").is_file())
    if not done:
        raise SystemExit(f"no preprocessed subject in {derivative}: run make preprocess data.root={raw} first")
    return pd.DataFrame([subject_row(derivative, raw, s, volumes.loc[s]) for s in done if s in volumes.index])


def mean_interval(values) -> tuple[float, float, float]:
    """Mean and its 95 % t interval."""
    values = np.asarray(values, float)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(values.mean() - half), float(values.mean() + half)


def correlation_interval(x, y) -> tuple[float, float, float]:
    """Pearson r and its 95 % interval (Fisher z)."""
    r = float(np.corrcoef(x, y)[0, 1])
    half = 1.96 / np.sqrt(len(x) - 3)
    return r, float(np.tanh(np.arctanh(r) - half)), float(np.tanh(np.arctanh(r) + half))


def summary(table: pd.DataFrame) -> dict:
    """Every figure of the docs' table, each as (value, low, high)."""
    return {"n_subjects": len(table),
            "brain_dice": mean_interval(table.brain_dice), "gm_dice": mean_interval(table.gm_dice),
            "tiv_r": correlation_interval(table.tiv_ml, table.dlmuse_icv_ml),
            "gm_r": correlation_interval(table.gm_ml, table.dlmuse_gm_ml),
            "gm_ratio": mean_interval(table.gm_ml / table.dlmuse_gm_ml),
            "tiv_ratio": mean_interval(table.tiv_ml / table.dlmuse_icv_ml),
            **{column: mean_interval(table[column]) for column in table.columns
               if column.startswith(("recall_", "outside_mask_")) or column == "gm_in_wm"},
            "seconds": mean_interval(table.seconds)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", required=True, help="the raw root make preprocess read (with derivatives/dlmuse)")
    parser.add_argument("--derivatives-dir", default="data/derivatives")
    parser.add_argument("--out", default=None, help="write the per-subject table here (CSV)")
    args = parser.parse_args(argv)
    table = agreement(args.raw, args.derivatives_dir)
    if args.out:
        table.to_csv(args.out, index=False)
    for name, value in summary(table).items():
        if isinstance(value, tuple):
            print(f"{name}: {value[0]:.3f} (95 % interval {value[1]:.3f} to {value[2]:.3f})")
        else:
            print(f"{name}: {value}")


if __name__ == "__main__":
    main()

"""Where the derivative made from a raw T1 root lives, and the names of its files.

``make preprocess`` (:mod:`brainage.preprocessing`) writes it and ``data.format: preprocessed``
(:mod:`brainage.data.formats.preprocessed`) reads it, so the layout lives here, below both. A raw
root may be read-only (a shared data set), so it is never written into: the derivative goes to
``<derivatives_dir>/<root name>-<8 hex digits>/``, the digits a hash of the root's resolved path,
so two roots with one name never share a derivative and every later stage finds the derivative
of a root from the root alone. Inside, a BIDS derivative::

    dataset_description.json          GeneratedBy: the pipeline, its version and step settings
    participants.tsv                  the raw table plus tiv_ml, gm_ml, wm_ml, csf_ml, similarity, qc
    qc.tsv, report.html, qc/sub-<id>.png
    sub-<id>/anat/sub-<id>_space-MNI152NLin2009cSym_res-1p5mm_label-GM_desc-modulated_probseg.nii.gz
    sub-<id>/anat/sub-<id>_space-MNI152NLin2009cSym_res-1p5mm_label-GM_probseg.nii.gz
    sub-<id>/anat/sub-<id>_desc-brain_mask.nii.gz          native space
    sub-<id>/anat/sub-<id>_label-GM_probseg.nii.gz         native space
    sub-<id>/anat/sub-<id>_preproc.json                    volumes, similarity, seconds per step
    .incomplete/sub-<id>/             a subject being written (renamed to sub-<id>/ when whole)

A subject id without the ``sub-`` prefix (a folder and a table) gets it, with any character a
BIDS label cannot hold left out (``IXI012-HH-1211`` -> ``sub-IXI012HH1211``).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

PIPELINE = "brainage-preprocess"
SPACE = "MNI152NLin2009cSym"
MNI_GM = {True: "space-{space}_res-1p5mm_label-GM_desc-modulated_probseg.nii.gz",
          False: "space-{space}_res-1p5mm_label-GM_probseg.nii.gz"}
NATIVE = {"brain_mask": "desc-brain_mask.nii.gz", "gm_native": "label-GM_probseg.nii.gz",
          "record": "preproc.json"}
KINDS = ("modulated", "unmodulated", *NATIVE)  # every file of a finished subject; record last
DESCRIPTION = "dataset_description.json"
PARTICIPANTS = "participants.tsv"
QC_TABLE = "qc.tsv"
REPORT = "report.html"
WORK_DIR = ".incomplete"


def derivative_dir(raw_root, derivatives_dir="data/derivatives") -> Path:
    """The derivative folder made from ``raw_root`` (whether or not it exists yet)."""
    resolved = Path(raw_root).expanduser().resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return Path(derivatives_dir) / f"{resolved.name or 'root'}-{digest}"


def bids_label(subject_id: str) -> str:
    """The derivative's name of a subject: ``sub-<label>``, the label alphanumeric."""
    label = re.sub(r"[^A-Za-z0-9]", "", str(subject_id).removeprefix("sub-"))
    return f"sub-{label}"


def subject_dir(derivative: Path, subject_id: str) -> Path:
    """The finished subject's folder, ``sub-<id>/``."""
    return Path(derivative) / bids_label(subject_id)


def subject_file(derivative: Path, subject_id: str, kind: str) -> Path:
    """One file of one subject: ``kind`` is ``modulated``, ``unmodulated`` or a key of NATIVE."""
    if kind in ("modulated", "unmodulated"):
        suffix = MNI_GM[kind == "modulated"].format(space=SPACE)
    else:
        suffix = NATIVE[kind]
    label = bids_label(subject_id)
    return Path(derivative) / label / "anat" / f"{label}_{suffix}"


def qc_picture(derivative: Path, subject_id: str) -> Path:
    """The subject's QC overlay, ``qc/sub-<id>.png``."""
    return Path(derivative) / "qc" / f"{bids_label(subject_id)}.png"


def is_complete(derivative: Path, subject_id: str) -> bool:
    """Whether every file of the subject, its QC picture included, is in place."""
    return qc_picture(derivative, subject_id).is_file() and all(
        subject_file(derivative, subject_id, kind).is_file() for kind in KINDS)


def step_settings(derivative: Path) -> dict | None:
    """The step settings the derivative was made with: its ``dataset_description.json``'s, else
    (a run still going) the first finished subject's record's; None where neither says."""
    derivative = Path(derivative)
    records = sorted(derivative.glob(f"sub-*/anat/*_{NATIVE['record']}"))[:1]
    for path, key in [(derivative / DESCRIPTION, "StepSettings"), *((r, "steps") for r in records)]:
        try:
            return dict(json.loads(path.read_text())[key])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None

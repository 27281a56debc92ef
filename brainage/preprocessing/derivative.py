"""Where the derivative made from a raw T1 root lives, and the names of its files.

A raw root may be read-only (a shared data set), so ``make preprocess`` never writes into it: the
derivative goes to ``<derivatives_dir>/<root name>-<8 hex digits>/``, the digits a hash of the
root's resolved path, so two roots with one name never share a derivative and every later stage
finds the derivative of a root from the root alone. Inside, a BIDS derivative::

    dataset_description.json
    participants.tsv                  the raw table plus tiv_ml, gm_ml, wm_ml, csf_ml, qc columns
    qc.tsv, report.html, qc/<subject>.png
    sub-<id>/anat/sub-<id>_space-MNI152NLin2009cSym_res-1p5mm_label-GM_desc-modulated_probseg.nii.gz
    sub-<id>/anat/sub-<id>_space-MNI152NLin2009cSym_res-1p5mm_label-GM_probseg.nii.gz
    sub-<id>/anat/sub-<id>_desc-brain_mask.nii.gz          native space
    sub-<id>/anat/sub-<id>_label-GM_probseg.nii.gz         native space
    sub-<id>/anat/sub-<id>_preproc.json                    volumes, similarity, seconds per step
"""
from __future__ import annotations

import hashlib
from pathlib import Path

PIPELINE = "brainage-preprocess"
SPACE = "MNI152NLin2009cSym"
MNI_GM = {True: "space-{space}_res-1p5mm_label-GM_desc-modulated_probseg.nii.gz",
          False: "space-{space}_res-1p5mm_label-GM_probseg.nii.gz"}
NATIVE = {"brain_mask": "desc-brain_mask.nii.gz", "gm_native": "label-GM_probseg.nii.gz",
          "record": "preproc.json"}


def derivative_dir(raw_root, derivatives_dir="data/derivatives") -> Path:
    """The derivative folder made from ``raw_root`` (whether or not it exists yet)."""
    resolved = Path(raw_root).expanduser().resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return Path(derivatives_dir) / f"{resolved.name or 'root'}-{digest}"


def subject_file(derivative: Path, subject_id: str, kind: str) -> Path:
    """One file of one subject: ``kind`` is ``modulated``, ``unmodulated`` or a key of NATIVE."""
    if kind in ("modulated", "unmodulated"):
        suffix = MNI_GM[kind == "modulated"].format(space=SPACE)
    else:
        suffix = NATIVE[kind]
    return Path(derivative) / subject_id / "anat" / f"{subject_id}_{suffix}"

"""The derivative's tables: ``dataset_description.json``, ``participants.tsv``, ``qc.tsv`` and
``report.html``, made from every subject's ``preproc.json`` and this run's bad subjects.

Each file is written beside itself and renamed into place, so a reader never sees half of one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from brainage.data.derivative import (
    DESCRIPTION,
    PARTICIPANTS,
    PIPELINE,
    QC_TABLE,
    REPORT,
    bids_label,
    subject_file,
)
from brainage.preprocessing import steps
from brainage.preprocessing.bids import RawCohort
from brainage.preprocessing.qc import EXCLUDED, score_subjects
from brainage.preprocessing.report import report_html
from brainage.preprocessing.subject import brainage_version, steps_record

MEASURES = ["similarity", "tiv_ml", "gm_ml", "wm_ml", "csf_ml"]
QC_COLUMNS = ["participant_id", "subject_id", "status", "flags", "reason", *MEASURES, "gm_fraction",
              "z_similarity", "z_tiv_ml", "z_gm_fraction", "seconds"]


def write_atomic(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file and one rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_record(derivative: Path, subject_id: str) -> dict:
    """A finished subject's ``preproc.json``."""
    return json.loads(subject_file(derivative, subject_id, "record").read_text())


def subject_rows(derivative: Path, cohort: RawCohort, bad: dict) -> pd.DataFrame:
    """One row per subject of the raw table, in its order: done (with its measures) or excluded
    (with the reason, from ``bad``: subject id -> reason)."""
    rows = []
    for subject in cohort.subjects:
        sid = subject.subject_id
        row = {"participant_id": bids_label(sid), "subject_id": sid}
        if sid in bad:
            rows.append({**row, "status": EXCLUDED, "reason": bad[sid]})
            continue
        record = read_record(derivative, sid)
        volumes = {k if k.endswith("_ml") else f"{k}_ml": v for k, v in record["volumes_ml"].items()}
        rows.append({**row, "status": "done", "reason": "", **volumes,
                     "similarity": record["similarity"], "seconds": record["seconds"].get("total")})
    return pd.DataFrame(rows).reindex(columns=[c for c in QC_COLUMNS if c not in
                                               ("flags", "gm_fraction") and not c.startswith("z_")])


def write_tables(derivative: Path, cohort: RawCohort, bad: dict, settings) -> pd.DataFrame:
    """Every table of the derivative, and the report; returns the scored QC table."""
    scored = score_subjects(subject_rows(derivative, cohort, bad), settings.qc.z_threshold)
    scored = scored[QC_COLUMNS]
    write_atomic(derivative / QC_TABLE, scored.to_csv(sep="\t", index=False, na_rep="n/a",
                                                      float_format="%.4g"))
    write_atomic(derivative / PARTICIPANTS, _participants(cohort, scored).to_csv(
        sep="\t", index=False, na_rep="n/a", float_format="%.4g"))
    write_atomic(derivative / DESCRIPTION, json.dumps(description(settings), indent=2) + "\n")
    write_atomic(derivative / REPORT, report_html(scored, derivative, settings))
    return scored


def _participants(cohort: RawCohort, scored: pd.DataFrame) -> pd.DataFrame:
    """The raw table as written, plus the volumes, the similarity and the QC verdict."""
    added = scored[MEASURES].copy()
    added["qc"] = scored["status"]
    added["qc_flags"] = scored["flags"].where(scored["status"] != EXCLUDED, scored["reason"])
    clashing = [c for c in added.columns if c in cohort.table.columns]
    raw = cohort.table.drop(columns=clashing)  # a rerun over a table that holds them already
    return pd.concat([raw.reset_index(drop=True), added.reset_index(drop=True)], axis=1)


def _steps_described() -> str:
    """What the steps do, in the words of their module's docstring (one source)."""
    return " ".join(steps.__doc__.split("\n\n", 1)[-1].split())


def description(settings) -> dict:
    """``dataset_description.json``: a BIDS derivative, what made it and with which settings."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ants = version("antspyx")
    except PackageNotFoundError:
        ants = "not installed"
    return {
        "Name": f"{Path(settings.root).resolve().name}: grey matter on the 1.5 mm MNI grid",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": PIPELINE, "Version": brainage_version(),
                         "Description": f"{_steps_described()} (ANTsPy: antspyx {ants})"}],
        "SourceDatasets": [{"URL": Path(settings.root).resolve().as_uri()}],
        "StepSettings": steps_record(settings.steps),
    }

"""The derivative's ``report.html``: counts, then every subject with its QC picture, the subjects
to look at first (flagged, then excluded with their reasons), the rest after them.

The page sits in the derivative and links the pictures relatively (``qc/sub-<id>.png``), so the
folder can be moved or shared as it is.
"""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from brainage.data.derivative import qc_picture
from brainage.preprocessing.qc import EXCLUDED, FLAGGED, MEASURES, OK

ORDER = {FLAGGED: 0, EXCLUDED: 1, OK: 2}
STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:middle;font-size:13px}tr.flagged{background:#fff3cd}tr.excluded{background:#f8d7da}
img{width:330px;display:block}"""
SHOWN = [("similarity", "similarity", "{:.3f}"), ("tiv_ml", "TIV (mL)", "{:.0f}"),
         ("gm_ml", "GM (mL)", "{:.0f}"), ("gm_fraction", "GM / TIV", "{:.3f}"),
         ("seconds", "seconds", "{:.0f}")]


def report_html(scored: pd.DataFrame, derivative: Path, settings) -> str:
    """The page for the QC table ``scored`` (:func:`brainage.preprocessing.qc.score_subjects`)."""
    counts = scored["status"].value_counts()
    rows = scored.assign(_order=scored["status"].map(ORDER)).sort_values(["_order", "participant_id"],
                                                                         kind="stable")
    head = "".join(f"<th>{html.escape(title)}</th>" for title in
                   ["QC picture", "subject", "status", "flags or reason", *(t for _, t, _ in SHOWN)])
    body = "".join(_row(row, derivative) for row in rows.to_dict("records"))
    zs = ", ".join(f"{m} ({'low side' if side == 'low' else 'either side'})"
                   for m, side in MEASURES.items())
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>preprocess QC</title>"
            f"<style>{STYLE}</style></head><body><h1>Preprocessing QC</h1>"
            f"<p>Raw data: <code>{html.escape(str(Path(settings.root).resolve()))}</code>; "
            f"derivative: <code>{html.escape(str(derivative))}</code>.</p>"
            f"<p><b>{int(counts.get(OK, 0))}</b> ok, <b>{int(counts.get(FLAGGED, 0))}</b> flagged, "
            f"<b>{int(counts.get(EXCLUDED, 0))}</b> excluded, of {len(scored)} subjects. A subject is "
            f"flagged when a robust z-score (median, 1.4826 MAD) of {zs} lies beyond "
            f"{settings.qc.z_threshold:g}. Each picture shows where the subject's grey matter (unmodulated) "
            f"crosses 0.5, in red, over the MNI template.</p>"
            f"<table><tr>{head}</tr>{body}</table></body></html>\n")


def _row(row: dict, derivative: Path) -> str:
    status = row["status"]
    picture = qc_picture(derivative, row["subject_id"]).relative_to(derivative).as_posix()
    image = "" if status == EXCLUDED else f"<img src='{html.escape(picture)}' loading='lazy' alt=''>"
    note = row["reason"] if status == EXCLUDED else row["flags"]
    values = [_number(row.get(key), fmt) for key, _, fmt in SHOWN]
    cells = [image, html.escape(str(row["participant_id"])), status, html.escape(str(note or "")),
             *values]
    return f"<tr class='{status}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _number(value, fmt: str) -> str:
    return "" if value is None or pd.isna(value) else fmt.format(value)

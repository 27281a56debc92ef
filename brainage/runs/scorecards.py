"""Did the tested method pass the faithfulness checks? Read from an evaluate run of the same model.

The newest finished evaluate run (``evaluate.json``) whose ``train_dir`` is the explain run's
training run is used. Its ``scorecard.csv`` decides when it has a pass/fail column (``passed``,
``pass`` or ``verdict``; a method scored in several target modes: its first row); otherwise
``evaluate.json``'s ``flagged`` methods (failed the randomisation sanity check) do. Without such
a run every method is "not scored".
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

NOT_SCORED = "not scored"
_PASS_COLUMNS = ("passed", "pass", "verdict")


def _same_run(a, b) -> bool:
    return Path(str(a)).resolve() == Path(str(b)).resolve()


def evaluate_run(train_dir, outputs_dir) -> Path | None:
    """The newest finished evaluate run of ``train_dir`` under ``outputs_dir/evaluate``."""
    base = Path(outputs_dir) / "evaluate"
    for run in sorted(base.glob("*"), key=lambda p: p.name, reverse=True):
        marker = run / "evaluate.json"
        if marker.is_file():
            try:
                summary = json.loads(marker.read_text())
            except json.JSONDecodeError:
                continue
            if _same_run(summary.get("train_dir", ""), train_dir):
                return run
    return None


def _verdict(value) -> str:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "pass", "passed", "passes"):
        return "passed"
    if text in ("false", "0", "no", "fail", "failed", "fails"):
        return "failed"
    return text or NOT_SCORED


def faithfulness_status(train_dir, outputs_dir, methods) -> tuple:
    """``({method: "passed" | "failed …" | "not scored"}, evaluate run or None)``."""
    run = evaluate_run(train_dir, outputs_dir)
    if run is None:
        return {m: NOT_SCORED for m in methods}, None
    status = {m: NOT_SCORED for m in methods}
    card = run / "scorecard.csv"
    table = pd.read_csv(card) if card.is_file() else None
    column = next((c for c in _PASS_COLUMNS if table is not None and c in table.columns), None)
    if column is not None:
        for method, value in zip(table["method"], table[column]):
            if status.get(method) == NOT_SCORED:  # a method's first row: the first target mode
                status[method] = _verdict(value)
        return status, run
    summary = json.loads((run / "evaluate.json").read_text())
    flagged = summary.get("flagged") or {}
    scored = set(summary.get("methods") or [])
    for method in methods:
        if method in flagged:
            status[method] = "failed the randomisation sanity check"
        elif method in scored:
            status[method] = "passed the randomisation sanity check"
    return status, run

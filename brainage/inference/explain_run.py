"""Reading a finished explain run: its summary, subjects, map files, region tables and atlas.

Only the run directory's contract files are read (``explain.json``, ``subjects.csv``, ``maps/``,
``regions/<atlas>_subjects.csv``, ``.hydra/config.yaml``; an ensemble's ``regions/<atlas>_members.csv``);
nothing is recomputed here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from brainage.errors import InferError
from brainage.runs import latest_run, unfinished_reason

MARKER = "explain.json"
SHARD_MARKER = "shard.json"


@dataclass(frozen=True)
class ExplainRun:
    """A finished explain run.

    Attributes
    ----------
    dir : Path
        The run directory.
    summary : dict
        ``explain.json``.
    subjects : DataFrame
        ``subjects.csv`` (subject_id, age, bin, predicted, split), subject ids as text.
    config : DictConfig or None
        The run's ``.hydra/config.yaml`` (atlas settings, data overrides), when present.
    """

    dir: Path
    summary: dict
    subjects: pd.DataFrame
    config: object

    @property
    def methods(self) -> list:
        return list(self.summary["methods"])

    @property
    def train_dir(self) -> Path:
        return Path(self.summary["train_dir"])

    @property
    def atlas_name(self) -> str:
        return str(self.summary["atlas"])

    @property
    def primary_target(self):
        """The first target: the one the run's group maps and region tables use."""
        return self.summary["targets"][0]

    def map_tags(self, subjects: pd.DataFrame) -> list:
        """File tag of each subject's primary map (``predicted``, ``true`` or ``class<k>``)."""
        spec = self.primary_target
        if spec == "all":  # explain's region tables take the predicted class's map
            return [f"class{int(k)}" for k in subjects["predicted"]]
        tag = f"class{spec}" if isinstance(spec, int) and not isinstance(spec, bool) else str(spec)
        return [tag] * len(subjects)

    def map_paths(self, method: str, subjects: pd.DataFrame) -> list:
        """Paths of the primary maps of ``method`` for ``subjects``, each checked to exist."""
        paths = [self.dir / "maps" / f"{sid}_{method}_{tag}.nii.gz"
                 for sid, tag in zip(subjects["subject_id"], self.map_tags(subjects))]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise InferError(f"{missing[0]} is missing ({len(missing)} of {len(paths)} maps of "
                             f"{method}); the explain run {self.dir} is incomplete")
        return paths

    def region_table(self, atlas: str) -> pd.DataFrame:
        """``regions/<atlas>_subjects.csv``: one row per subject, method and region."""
        path = self.dir / "regions" / f"{atlas}_subjects.csv"
        if not path.is_file():
            raise InferError(f"{path} is missing: the explain run wrote no region table for "
                             f"atlas {atlas}")
        return pd.read_csv(path, dtype={"subject_id": str})

    @property
    def n_members(self) -> int | None:
        """The number of members of an ensemble's run (``explain.json`` ``ensemble``); else None."""
        ensemble = self.summary.get("ensemble")
        return None if ensemble is None else int(ensemble["n_members"])

    def member_table_path(self, atlas: str) -> Path:
        """``regions/<atlas>_members.csv`` of an ensemble's run: each member's region rows."""
        return self.dir / "regions" / f"{atlas}_members.csv"


def find_explain_run(explain_dir, outputs_dir) -> Path:
    """``explain_dir`` when given (checked), else the newest finished run under ``outputs_dir``."""
    if explain_dir is None:
        try:
            return latest_run("explain", outputs_dir, required=MARKER)
        except FileNotFoundError:
            raise InferError(f"no finished explain run (with {MARKER}) under "
                             f"{Path(outputs_dir) / 'explain'}/ — run `make explain` first, or "
                             "pass explain_dir=<explain run directory>") from None
    path = Path(explain_dir)
    if not path.is_dir():
        raise InferError(f"explain_dir={path} does not exist; pass an explain run directory such "
                         "as outputs/explain/<date>_<time>")
    if not (path / MARKER).is_file():
        what = ("a shard: combine the shards with `make explain merge=…` first"
                if (path / SHARD_MARKER).is_file() else "unfinished, failed or not an explain run")
        raise InferError(f"explain_dir={path} holds no {MARKER} ({what})")
    reason = unfinished_reason(path)
    if reason is not None:
        raise InferError(f"explain_dir={path}: the explain run did not finish, its run.json says "
                         f"{reason}; pass a finished run")
    return path


def read_explain_run(path) -> ExplainRun:
    """Read the contract files of the explain run at ``path``."""
    from omegaconf import OmegaConf

    path = Path(path)
    summary = json.loads((path / MARKER).read_text())
    subjects_path = path / "subjects.csv"
    if not subjects_path.is_file():
        raise InferError(f"{subjects_path} is missing: {path} is not a complete explain run")
    subjects = pd.read_csv(subjects_path, dtype={"subject_id": str})
    config_path = path / ".hydra" / "config.yaml"
    config = OmegaConf.load(config_path) if config_path.is_file() else None
    return ExplainRun(path, summary, subjects, config)


def select_methods(run: ExplainRun, wanted) -> list:
    """The methods to test: ``wanted`` (each checked against the run) or all of the run's."""
    if wanted is None:
        return run.methods
    unknown = [m for m in wanted if m not in run.methods]
    if unknown:
        raise InferError(f"method {unknown[0]!r} is not in the explain run {run.dir} (it has "
                         f"{', '.join(run.methods)}); pick one of those or explain with it first")
    return list(wanted)


def select_subjects(run: ExplainRun, which: str) -> pd.DataFrame:
    """The explained subjects to use: ``all`` or one split of ``subjects.csv``."""
    if which == "all":
        chosen = run.subjects
    else:
        chosen = run.subjects[run.subjects["split"] == which]
    if chosen.empty:
        splits = ", ".join(sorted(run.subjects["split"].astype(str).unique()))
        raise InferError(f"subjects={which}: the explain run {run.dir} explained no subject of "
                         f"that split (it has: {splits}); use subjects=all")
    return chosen.reset_index(drop=True)

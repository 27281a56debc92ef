"""What the bad-input cases start from: a good cohort (NIfTI and stacked), earlier runs in every
state, and a case's own folder; plus how a case is run (in-process or on the command line)."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pandas as pd

from tests.builders import REPO, TINY_MODEL, cohort_overrides, write_cohort

FINISHED_TRAIN = "train/2026-01-01_00-00-00"
INTERRUPTED_TRAIN = "train/2026-01-02_00-00-00"
FAILED_TRAIN = "train/2026-01-03_00-00-00"
KILLED_TRAIN = "train/2026-01-04_00-00-00"
FINISHED_EXPLAIN = "explain/2026-01-01_00-00-00"
KILLED_EXPLAIN = "explain/2026-01-02_00-00-00"


@dataclass
class Call:
    """A stage run with these overrides into ``run_dir`` (default: a fresh folder of the case)."""

    overrides: list
    run_dir: Path | None = None


@dataclass(frozen=True)
class Case:
    """One bad input: what is wrong, how to make it, and what the message must name.

    ``culprit`` is a regular expression the one-line message must match; ``bystander`` text it must
    not contain (a subject wrongly blamed); ``check(context, run_dir)`` asserts more.
    """

    id: str
    category: str
    what: str
    stage: str
    make: Callable
    culprit: str
    cli: bool = False
    bystander: str | None = None
    check: Callable | None = None
    early: bool = False  # refused before any data or model is loaded


@dataclass
class Context:
    """A case's view of the world; ``tmp`` is its own folder."""

    tmp: Path
    world: "World"
    outputs: Path = field(init=False)

    def __post_init__(self):
        self.outputs = self.world.outputs

    def cohort(self) -> Path:
        """A copy of the good NIfTI cohort to spoil."""
        return Path(shutil.copytree(self.world.cohort, self.tmp / "cohort"))

    def npy(self) -> Path:
        """A copy of the good stacked cohort (``gm.npy`` + ``ages.csv``) to spoil."""
        return Path(shutil.copytree(self.world.npy, self.tmp / "npy"))

    def train(self, root: Path, *overrides) -> list:
        """Train overrides on the NIfTI cohort at ``root``."""
        return [*TINY_MODEL, "trainer.epochs=1", "seed=0",
                *cohort_overrides(root, self.tmp / "cache"), *overrides]

    def train_npy(self, root: Path, *overrides) -> list:
        return [*TINY_MODEL, "trainer.epochs=1", "data=npy", f"data.root={root}",
                "data.crop_shape=[20,22,19]", "data.crop_offset=[1,2,1]",
                f"data.cache.dir={self.tmp / 'cache'}", "data.split=[0.5,0.25,0.25]", *overrides]

    def explain(self, *overrides) -> list:
        """Explain overrides: the newest finished training run of ``outputs`` and its atlas."""
        run = self.world.train_run
        return [f"outputs_dir={self.outputs}", "atlas=custom", f"atlas.path={run['atlas']}",
                f"atlas.labels={run['labels']}", "progress=false", "figures.subjects=1",
                *overrides]

    def run(self, name: str) -> Path:
        return self.outputs / name


class World:
    """Built once per test module: the good inputs and the earlier runs."""

    def __init__(self, base: Path, train_run: dict):
        self.train_run = train_run
        self.cohort = write_cohort(base / "cohort")
        self.npy = _stacked_cohort(self.cohort, base / "npy")
        self.outputs = base / "outputs"
        _earlier_runs(self.outputs, train_run["run"])


def _stacked_cohort(cohort: Path, out: Path) -> Path:
    table = pd.read_csv(cohort / "participants.tsv", sep="\t", dtype=str)
    stack = np.stack([nib.load(cohort / "gm" / f"{sid}_gm.nii.gz").get_fdata(dtype=np.float32)
                      for sid in table["participant_id"]])
    out.mkdir()
    np.save(out / "gm.npy", stack)
    table.rename(columns={"participant_id": "subject_id"}).to_csv(out / "ages.csv", index=False)
    return out


def _record(run_dir: Path, stage: str, state: str, **fields) -> None:
    from brainage.runs import RunRecord

    record = RunRecord(stage, **fields)
    if state == "running":
        record.pid = _dead_pid()
        record.save(run_dir)
    else:
        record.end(run_dir, state, "boom: the disk was full" if state == "failed" else None)


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def _earlier_runs(outputs: Path, trained: Path) -> None:
    """A finished, an interrupted, a failed and a killed training run; a finished and a killed
    explain run — each with the files a real one has."""
    hint = "python -m brainage.train trainer.resume={}"
    for name, state in [(FINISHED_TRAIN, "finished"), (FAILED_TRAIN, "failed"),
                        (KILLED_TRAIN, "running"), (INTERRUPTED_TRAIN, "interrupted")]:
        run = Path(shutil.copytree(trained, outputs / name))
        (run / ".hydra" / "hydra.yaml").write_text("hydra:\n  job:\n    name: train\n")
        (run / ".hydra" / "overrides.yaml").write_text("- trainer.epochs=2\n")
        (run / "train.log").write_text("[2026-01-01 00:00:00,000][brainage.train][INFO] - epoch 1\n")
        (run / "checkpoint").mkdir()
        (run / "checkpoint" / "config.yaml").write_text((run / ".hydra" / "config.yaml").read_text())
        if state == "finished":
            (run / "metrics.json").write_text('{"test_accuracy": 0.5}\n')
        if state == "interrupted":
            (run / "model.keras").unlink()
        _record(run, "train", state, continue_with=hint.format(run))
    for name, state in [(FINISHED_EXPLAIN, "finished"), (KILLED_EXPLAIN, "running")]:
        run = outputs / name
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "config.yaml").write_text(f"train_dir: {outputs / FINISHED_TRAIN}\n")
        (run / "report.html").write_text("<html>earlier</html>\n")
        (run / "explain.json").write_text('{"n_subjects": 6}\n')
        (run / "explain.log").write_text("earlier\n")
        _record(run, "explain", state)


def tree_hashes(root: Path) -> dict:
    """Every file under ``root``: its bytes' hash and modification time."""
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                            p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(stage: str, overrides: list, run_dir: Path, cwd: Path) -> tuple[int, str, str]:
    """``python -m brainage.<stage> …`` as a user types it: status, stdout, stderr."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", TQDM_DISABLE="1")
    proc = subprocess.run([sys.executable, "-m", f"brainage.{stage}", *overrides,
                           f"hydra.run.dir={run_dir}"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def run_in_process(stage: str, overrides: list, run_dir: Path, capsys) -> tuple[int, str, str]:
    """The stage's command-line entry without Hydra's process: status, stdout, stderr."""
    import importlib

    import pytest

    from brainage.runs import quote_path_templates
    from tests.builders import compose_stage

    cfg = compose_stage(stage, *quote_path_templates(overrides))
    main = importlib.import_module(f"brainage.{stage}")._main
    with pytest.raises(SystemExit) as exit_:
        main(cfg, run_dir=run_dir)
    captured = capsys.readouterr()
    return exit_.value.code, captured.out, captured.err


def shown(message: str, context: Context) -> str:
    """The message with the test's temporary folders written as placeholders (for the docs)."""
    for path, name in [(context.tmp, "<case>"), (context.outputs, "outputs"),
                       (context.world.train_run["tmp"], "<train_run>")]:
        message = message.replace(str(path), name)
    return re.sub(r"/tmp/pytest-of-[^/ ]+/pytest-\d+/[^/ ]+", "<tmp>", message)

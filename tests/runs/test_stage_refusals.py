"""Every stage refuses the same way on its command line: a used run directory, and a bad config
value, each give exit status 2 and one ``error:`` line without a traceback. A refused directory
is left byte for byte as it was; a run stopped by a bad value holds its ``run.json`` (failed, with
the message), ``.hydra/`` and its log, and no output.

Each stage runs through its real entry (``brainage.<stage>.main``: Hydra, then
:func:`brainage.runs.run_stage`) in a process of its own, with a stand-in for the part of its work
that must not be reached (the work itself is each stage's own tests' matter):

* a used run directory is refused by ``run_stage`` before the stage's work function is called,
  so the work function is the stand-in;
* a bad value is refused by the stage's settings (``<Settings>.from_cfg``), read first thing in
  its work function, so the work function is the real one and the stand-in takes over only after
  the settings were read, should they take the value.
"""
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from brainage.runs import RunRecord, read_record
from tests.builders import REPO

# Each stage module, the work function its entry hands to run_stage, and the settings class that
# work function reads first ("module:Class").
STAGES = {
    "train": ("train", "brainage.training.settings:TrainSettings"),
    "explain": ("explain", "brainage.explaining.settings:ExplainSettings"),
    "evaluate": ("evaluate", "brainage.evaluate:EvaluateSettings"),
    "infer": ("infer", "brainage.inference.settings:InferSettings"),
    "predict": ("predict", "brainage.predicting.settings:PredictSettings"),
    "preprocess": ("preprocess", "brainage.preprocessing.settings:PreprocessSettings"),
    "bench": ("bench", "brainage.benchmark.settings:BenchSettings"),
    "seed_digits": ("run_digits", "brainage.digits.settings:DigitsSettings"),
    "sweep": ("sweep", "brainage.training.sweeps:SweepSettings"),
    "distribute": ("distribute", "brainage.training.stream_measure:StreamSettings"),
    "cohort": ("cohort", "brainage.cohort:CohortStageSettings"),
    "seed_unet": ("run_unet", "brainage.segmentation.settings:UNetSettings"),
}

# Per stage, one value its settings refuse, and the one line that says so (the key and what was
# expected). ``{tmp}`` is the test's folder.
BAD_VALUES = {
    "train": (["seed=-1"], "seed=-1; expected a seed >= 0"),
    "explain": (["batch_size=0"], "batch_size=0; expected ≥ 1"),
    "evaluate": (["batch_size=0"], "batch_size=0; expected ≥ 1"),
    "infer": (["measure=bogus"], "measure='bogus'; expected one of share, raw"),
    "predict": (["batch_size=0"], "batch_size=0; expected a number ≥ 1"),
    "preprocess": (["data.root={tmp}", "workers=0"],
                   "workers=0; expected null (every available core) or a positive number of workers"),
    "bench": (["repeats=0"], "bench: repeats must be an integer >= 1, got 0"),
    "seed_digits": (["data.test_fraction=2"], "digits: data.test_fraction must be in (0, 1), got 2"),
    "sweep": (["sweep_dir=null"],
              "sweep_dir is required: python -m brainage.sweep sweep_dir=multirun/train/<date>_<time>"),
    "distribute": (["batch_size=0"], "batch_size: expected positive numbers, got 0"),
    "cohort": (["progress=maybe"], "cohort.progress='maybe'; expected true or false"),
    "seed_unet": (["network.pool=bogus"], "unet: network.pool must be one of ['average', 'max'], got 'bogus'"),
}

# The stage's entry as typed, with a stand-in: "work" (the work function must not begin) or
# "settings" (the work function runs until its settings are read, then stops).
STAND_IN = """
import importlib, sys
stage, work, settings, part = sys.argv[1:5]
del sys.argv[1:5]
module = importlib.import_module("brainage." + stage)

def work_began(*args, **kwargs):
    raise SystemExit("stand-in: the stage's work began")

if part == "work":
    setattr(module, work, work_began)
else:
    path, name = settings.split(":")
    kind = getattr(importlib.import_module(path), name)
    read = kind.from_cfg

    def read_then_stop(cls, cfg):
        read(cfg)
        raise SystemExit("stand-in: the settings took the value")

    kind.from_cfg = classmethod(read_then_stop)
module._main.__module__ = "__main__"  # Hydra then finds configs/ and names the job as under -m
module.main()
"""
ENV = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", TQDM_DISABLE="1")
# What TensorFlow's C++ side prints on stderr while it is imported, before Python can quieten it
# (absl's notice, then log lines such as oneDNN's, which TF_CPP_MIN_LOG_LEVEL does not reach): not
# the stage's.
TENSORFLOW_NOISE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called "
                              r"are written to STDERR|[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] .*")
# Train imports TensorFlow before it checks anything (5-10 s a process, and the notices above):
# slow; every other stage refuses in about a second.
EVERY_STAGE = [pytest.param(stage, marks=pytest.mark.slow) if stage == "train" else stage
               for stage in STAGES]
# What a run that failed on a bad value leaves: its record, config and log (run_stage writes them
# before the stage's work, so that a stopped run can be told and continued), and no output.
FAILED_RUN_FILES = {"run.json", ".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"}


def _run(stage: str, part: str, overrides: list, run_dir: Path, cwd: Path) -> tuple[int, str, str]:
    work, settings = STAGES[stage]
    proc = subprocess.run([sys.executable, "-c", STAND_IN, stage, work, settings, part, *overrides,
                           f"hydra.run.dir={run_dir}"], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def _lines(err: str) -> list:
    """The lines on stderr, less TensorFlow's start-up notices."""
    return [line for line in err.splitlines() if line.strip() and not TENSORFLOW_NOISE.fullmatch(line)]


def _tree(root: Path) -> dict:
    """Every file and folder under ``root``: a file's hash and modification time."""
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                            p.stat().st_mtime_ns) if p.is_file() else "folder"
            for p in sorted(root.rglob("*"))}


def _earlier_run(run_dir: Path, stage: str) -> None:
    """A finished run of ``stage`` with what such a run leaves: record, config, log, outputs."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(f"stage: {stage}\n")
    (run_dir / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (run_dir / f"{stage}.log").write_text(f"[2026-01-01 00:00:00,000][brainage.{stage}][INFO] - done\n")
    (run_dir / "figures").mkdir()
    (run_dir / "figures" / "earlier.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (run_dir / "summary.json").write_text('{"earlier": true}\n')
    RunRecord(stage).end(run_dir, "finished")


@pytest.mark.parametrize("stage", EVERY_STAGE)
def test_a_used_run_directory_is_refused_and_left_as_it_was(stage, tmp_path):
    run_dir = tmp_path / "run"
    _earlier_run(run_dir, stage)
    before = _tree(run_dir)
    status, out, err = _run(stage, "work", [], run_dir, tmp_path)
    refused = (f"error: {run_dir} already holds an earlier {stage} run, finished; a run never "
               "overwrites an earlier one — pick a new hydra.run.dir")
    assert status == 2, err[-3000:]
    assert out == "" and _lines(err) == [refused], err[-3000:]
    assert "Traceback" not in out + err
    assert _tree(run_dir) == before  # not a byte, not a time stamp, and no file more
    assert sorted(tmp_path.iterdir()) == [run_dir]  # nor anything beside it (outputs/ of Hydra's)


@pytest.mark.parametrize("stage", EVERY_STAGE)
def test_a_bad_config_value_is_one_line_and_exit_2_and_writes_no_output(stage, tmp_path):
    overrides, message = BAD_VALUES[stage]
    run_dir = tmp_path / "run"
    status, out, err = _run(stage, "settings", [o.format(tmp=tmp_path) for o in overrides], run_dir,
                            tmp_path)
    assert status == 2, err[-3000:]
    assert out == "" and _lines(err) == [f"error: {message}"], err[-3000:]
    assert "Traceback" not in out + err
    # the run started (run_stage checked the directory and recorded it), then failed: it says so,
    # and holds nothing but its record, config and log
    files = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    assert files == FAILED_RUN_FILES | {f"{stage}.log"}
    record = read_record(run_dir)
    assert (record.stage, record.state, record.error) == (stage, "failed", message)
    assert message in (run_dir / f"{stage}.log").read_text()

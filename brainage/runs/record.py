"""``run.json``: the state of a run directory, written atomically whenever the state changes.

A stage started from the command line (:func:`brainage.runs.run_stage`) writes ``run.json`` when
the run starts (``running``) and again when it ends: ``finished``, ``failed`` (with the error) or
``interrupted`` (Ctrl-C). A run killed outright (SIGKILL, power loss) stays ``running`` with the
process id and host that ran it, so a reader can tell it is dead. Readers take a run as finished
only when ``run.json`` says so; a directory without ``run.json`` comes from before the file
existed (or from calling a stage function directly) and counts as finished when it holds the
stage's finished marker (``model.keras``, ``explain.json``, …).
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

RUN_FILE = "run.json"
RUNNING, FINISHED, FAILED, INTERRUPTED = "running", "finished", "failed", "interrupted"
STATES = (RUNNING, FINISHED, FAILED, INTERRUPTED)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """The contents of ``run.json``.

    Attributes
    ----------
    stage : str
        ``train``, ``explain``, …
    state : str
        One of :data:`STATES`.
    started, ended : str or None
        ISO 8601 times; ``ended`` is None while running.
    error : str or None
        The message of a failed run (also in its log file).
    pid, host : int, str
        The process running it: a ``running`` run whose process is gone was killed.
    command : str
        The command line that started it.
    continue_with : str or None
        How to continue the run if it stops early (``trainer.resume=<dir>`` for training).
    resumed : list of str
        When it was continued, if ever.
    """

    stage: str
    state: str = RUNNING
    started: str = field(default_factory=_now)
    ended: str | None = None
    error: str | None = None
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    command: str = field(default_factory=lambda: shlex.join(sys.orig_argv))
    continue_with: str | None = None
    resumed: list = field(default_factory=list)

    def save(self, run_dir) -> None:
        """Replace ``run.json`` atomically: a reader sees the old or the new record, whole."""
        run_dir = Path(run_dir)
        tmp = run_dir / f".{RUN_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, run_dir / RUN_FILE)

    def end(self, run_dir, state: str, error: str | None = None) -> None:
        """Record how the run ended."""
        self.state, self.error, self.ended = state, error, _now()
        self.save(run_dir)

    def alive(self) -> bool:
        """Whether the process that runs it still exists (on this host; elsewhere: assumed)."""
        if self.state != RUNNING:
            return False
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process
            return True
        return True

    def describe(self) -> str:
        """The state in words: ``finished``, ``failed (<error>)``, ``killed while running``, …"""
        if self.state == FAILED:
            return f"failed ({self.error})"
        if self.state == RUNNING:
            return (f"running (process {self.pid} on {self.host})" if self.alive()
                    else "stopped without finishing (killed while running)")
        return self.state


def read_record(run_dir) -> RunRecord | None:
    """The run's ``run.json``, or None when the directory has none (or an unreadable one)."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        fields = json.loads(path.read_text())
        return RunRecord(**{k: v for k, v in fields.items() if k in RunRecord.__dataclass_fields__})
    except (ValueError, TypeError):
        return None


def is_finished(run_dir, marker: str) -> bool:
    """Whether ``run_dir`` holds a finished run: ``run.json`` says ``finished`` (and ``marker``
    exists), or, for a directory without ``run.json``, ``marker`` exists."""
    run_dir = Path(run_dir)
    if not (run_dir / marker).exists():
        return False
    record = read_record(run_dir)
    if record is None:
        return not (run_dir / RUN_FILE).exists()  # an unreadable run.json is not "finished"
    return record.state == FINISHED


def unfinished_reason(run_dir) -> str | None:
    """Why ``run.json`` says the run did not finish (``failed (…)``, …), or None."""
    record = read_record(run_dir)
    if record is None or record.state == FINISHED:
        return None
    return record.describe()

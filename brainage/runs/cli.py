"""A stage on the command line: its run directory checked, its state recorded, its errors one line.

Every stage's ``main()`` calls :func:`run_stage`, which

1. refuses a run directory holding any earlier run before writing anything into it (Hydra itself
   writes nothing there first: ``configs/hydra/default.yaml`` turns off its ``.hydra/`` and opens
   the log file at its first line);
2. writes ``run.json`` (``running``) and ``.hydra/`` (config, Hydra config, overrides);
3. runs the stage and records how it ended in ``run.json``: ``finished``; ``failed`` with the
   error, which is also printed as one ``error:`` line (exit status 2) and written to the log
   file; ``interrupted`` on Ctrl-C, with a one-line message saying how to continue (exit 130),
   and so on SIGTERM too (a SLURM time limit, ``timeout``, ``kill``; exit 143).

Every stage's ``main`` is made by :func:`hydra_entry`, which also turns SIGTERM into that stop.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Callable

from brainage.errors import BrainageError, RunDirError
from brainage.runs.directories import check_unused_run_dir
from brainage.runs.record import FAILED, FINISHED, INTERRUPTED, RUNNING, RunRecord, read_record

INTERRUPTED_STATUS = 130  # the shell's status for a process ended by SIGINT
TERMINATED_STATUS = 143  # and by SIGTERM
# A path template ({root}, {subject_id}) is a dict to Hydra's override grammar unless quoted.
_TEMPLATE = re.compile(r"\{(root|subject_id)\}")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the stage is, so that it stops as on Ctrl-C (training keeps the
    checkpoint of its last epoch, and run.json says interrupted)."""


# Whether this process got SIGTERM. The exception the handler raises lands wherever the main
# thread is, and there it can be swallowed: Keras's model.save (every epoch's checkpoint) holds a
# bare ``except:`` around its memory check, a ``__del__`` only prints what it raises. The flag
# outlives the exception; :func:`raise_if_terminated` raises it again.
_terminated = False


def _terminate(signum, frame):
    global _terminated
    _terminated = True
    raise Terminated


# Whether this process got SIGINT. Its KeyboardInterrupt can land inside a library that turns it
# into another error: TensorFlow's traceback-stack context manager asserts on the way out
# ("AssertionError: Concurrent access?"). run_stage then still ends the run as interrupted.
_interrupted = False


def _interrupt(signum, frame):
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def raise_if_terminated() -> None:
    """Raise :class:`Terminated` if SIGTERM arrived, whether or not its first exception got
    through: a stage's loop calls it at each step (training: every batch and epoch)."""
    if _terminated:
        raise Terminated


def run_stage(stage, cfg, errors: tuple = (BrainageError,), *, run_dir=None,
              reopen: Callable | None = None, continue_with: Callable | None = None):
    """Command-line wrapper: run ``stage(cfg, run_dir)`` and record its state in ``run.json``.

    Parameters
    ----------
    stage : callable(cfg, run_dir) -> dict
    cfg : DictConfig
    errors : tuple of exception types
        User errors: printed as ``error: <message>``, exit status 2, no traceback.
    run_dir : path, optional
        Default: Hydra's ``runtime.output_dir``.
    reopen : callable(run_dir), optional
        Continue the unfinished run in ``run_dir`` instead of starting a fresh one: it checks that
        the run can be continued (raising one of ``errors`` if not); ``.hydra/`` is kept as the run
        started.
    continue_with : callable(run_dir) -> str, optional
        The command that continues this run if it stops early, shown on Ctrl-C.

    Returns
    -------
    (Path, dict)
        The run directory and the stage's summary.
    """
    from_command_line = run_dir is None  # Hydra's run directory: this process is the stage's own
    run_dir = _run_dir(run_dir)
    try:
        record = _open_record(run_dir, _stage_name(stage), reopen)
    except errors as exc:  # refused: nothing has been written
        _exit(f"error: {exc}", 2)
    if reopen is None:  # first, so that a run killed at any point after is continuable
        save_config_files(run_dir, cfg)
    record.continue_with = continue_with(run_dir) if continue_with else None
    record.save(run_dir)
    try:
        summary = stage(cfg, run_dir)
        raise_if_terminated()  # a SIGTERM swallowed inside the stage still ends it interrupted
        record.end(run_dir, FINISHED)
    except errors as exc:
        _record_end(record, run_dir, FAILED, str(exc))
        _exit(f"error: {exc}", 2)
    except KeyboardInterrupt as exc:
        _stop_interrupted(record, run_dir, isinstance(exc, Terminated), from_command_line)
    except Exception as exc:  # a bug: recorded, then Hydra prints the traceback
        if _terminated or _interrupted:  # the signal's exception, turned into another on its way
            _stop_interrupted(record, run_dir, _terminated, from_command_line)
        _record_end(record, run_dir, FAILED, f"{type(exc).__name__}: {exc}", exc_info=True)
        raise
    return run_dir, summary


def _stop_interrupted(record: RunRecord, run_dir: Path, terminated: bool, now: bool) -> None:
    """End a run that SIGINT or SIGTERM stopped: ``run.json`` interrupted, the message, the
    shell's status for the signal."""
    _record_end(record, run_dir, INTERRUPTED, "SIGTERM" if terminated else "Ctrl-C (SIGINT)")
    _exit(_interrupted_message(run_dir, record),
          TERMINATED_STATUS if terminated else INTERRUPTED_STATUS, now=now)


def _run_dir(run_dir) -> Path:
    if run_dir is not None:
        return Path(run_dir)
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _stage_name(stage) -> str:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().job.name if HydraConfig.initialized() else stage.__name__


def _open_record(run_dir: Path, name: str, reopen) -> RunRecord:
    """A new record for a fresh run directory, or the reopened record of the run to continue."""
    fresh = RunRecord(name)
    if reopen is None:
        check_unused_run_dir(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        return fresh
    record = read_record(run_dir)
    if record is not None and (record.state == FINISHED or record.alive()):
        raise RunDirError(f"{run_dir} holds a {record.stage} run that is {record.describe()}; "
                          "only an unfinished run can be continued")
    reopen(run_dir)
    record = record or fresh  # a run from before run.json existed
    record.resumed.append(fresh.started)
    record.state, record.ended, record.error = RUNNING, None, None
    record.pid, record.host, record.command = fresh.pid, fresh.host, fresh.command
    return record


def _record_end(record: RunRecord, run_dir: Path, state: str, error: str,
                exc_info: bool = False) -> None:
    record.end(run_dir, state, error)
    log_to_files(logging.ERROR, f"run {state}: {error}",
                 exc_info=sys.exc_info() if exc_info else None)


def _interrupted_message(run_dir: Path, record: RunRecord) -> str:
    if record.continue_with:
        return f"interrupted: {run_dir} is marked interrupted; continue it with {record.continue_with}"
    return f"interrupted: {run_dir} is marked interrupted (run.json); run the stage again"


def _exit(message: str, status: int, now: bool = False):
    """Print ``message`` and exit with ``status``; ``now``: without the interpreter's teardown.

    A process interrupted inside TensorFlow can crash while its threads are torn down (seen: a
    segmentation fault after the interrupted run was recorded, so exit status -11 instead of
    130). Once the record is written and the streams and logs are flushed, nothing is left to
    do, so a command-line run ends at once.
    """
    print(message, file=sys.stderr)
    if now:
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(status)
    sys.exit(status)


def log_to_files(level: int, message: str, exc_info=None) -> None:
    """Write ``message`` to the run's log file(s) only; the terminal gets its own one line."""
    record = logging.LogRecord("brainage.runs", level, __file__, 0, message, None, exc_info)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def save_config_files(run_dir: Path, cfg) -> None:
    """``.hydra/config.yaml`` (the composed config), ``hydra.yaml`` and ``overrides.yaml``, as
    Hydra writes them (it is told not to, so that it cannot overwrite a refused directory's)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    out = run_dir / ".hydra"
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.instance().cfg
        (out / "hydra.yaml").write_text(OmegaConf.to_yaml(hydra_cfg))
        (out / "overrides.yaml").write_text(OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task))


def quote_path_templates(args: list) -> list:
    """Command-line overrides with a path template quoted for Hydra's grammar.

    ``data.image_template={root}/gm/{subject_id}_gm.nii`` is what users type (and what ``make``
    passes on), but Hydra reads an unquoted ``{`` as the start of a dictionary; the value is
    quoted as Hydra needs (``data.image_template='{root}/gm/{subject_id}_gm.nii'``). Values that
    are quoted already, and everything else, pass unchanged.
    """
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and not key.startswith("-") and _TEMPLATE.search(value) \
                and not value.startswith(("'", '"')):
            escaped = value.replace("\\", "\\\\").replace("'", "\\'")
            arg = f"{key}='{escaped}'"
        out.append(arg)
    return out


def hydra_entry(function, config_name: str, legacy_args: Callable | None = None):
    """``main()`` of a stage: Hydra's entry for ``configs/<config_name>.yaml`` around
    ``function(cfg)``, which calls :func:`run_stage`.

    SIGTERM stops the run as Ctrl-C does. The command line is rewritten by ``legacy_args``
    (list -> list: an earlier form of it) if given, then its path templates are quoted.
    """
    def main() -> None:
        import hydra

        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGINT, _interrupt)
        args = legacy_args(sys.argv[1:]) if legacy_args else sys.argv[1:]
        sys.argv[1:] = quote_path_templates(args)
        hydra.main(version_base="1.3", config_path="../configs", config_name=config_name)(
            function)()

    stage = Path(function.__code__.co_filename).stem  # its module is __main__ under python -m
    main.__doc__ = f"Command line: ``python -m brainage.{stage} key=value ...``."
    return main

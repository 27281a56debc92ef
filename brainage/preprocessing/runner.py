"""Every subject's job on worker processes of this machine, with a progress bar and the bad-subject
policy.

``workers`` processes (None: every available core) each preprocess one subject at a time on one
thread (ITK's threads would otherwise fight over the cores). The pool is started with ``spawn``,
so it behaves the same on Linux and macOS and a worker inherits no threads; Ctrl-C or SIGTERM
stops the run at once and ends the workers (their subjects are left out whole, and redone by the
next run). ``workers=1`` runs in this process instead: an ANTs call holds the interpreter, so
Ctrl-C then takes effect when the call in progress returns. A bad subject is logged with its
reason; with ``on_bad_subject: fail`` the run stops at the first: subjects not yet started are
cancelled, those in progress finish and are kept.
"""
from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from brainage.data.workers import resolve_workers
from brainage.preprocessing.steps import PreprocessError
from brainage.preprocessing.subject import Job, Outcome, process_subject, single_threaded
from brainage.runs.cli import log_to_files

log = logging.getLogger(__name__)


def run_jobs(jobs: list[Job], workers: int | None, on_bad_subject: str, progress: bool
             ) -> list[Outcome]:
    """Run ``jobs``; returns their outcomes in the order they finished.

    Raises
    ------
    PreprocessError
        With ``on_bad_subject='fail'``, the first bad subject's reason; or a worker process died.
    """
    from tqdm.auto import tqdm

    n_workers = resolve_workers(workers, len(jobs))
    log.info("preprocessing %d subject(s) on %d worker(s)", len(jobs), n_workers)
    with tqdm(total=len(jobs), desc="preprocess", unit="subject", disable=not progress) as bar:
        if workers == 1:
            return _collect(map(process_subject, jobs), on_bad_subject, bar)
        return _on_pool(jobs, n_workers, on_bad_subject, bar)


def _on_pool(jobs: list[Job], n_workers: int, on_bad_subject: str, bar) -> list[Outcome]:
    import multiprocessing

    pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=single_threaded)
    try:
        futures = [pool.submit(process_subject, job) for job in jobs]
        return _collect((_result(f) for f in as_completed(futures)), on_bad_subject, bar)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop now; a subject in progress is left out whole
        _end_workers(pool)
        raise
    finally:  # after a bad subject under fail: the subjects in progress finish and are kept
        pool.shutdown(wait=True, cancel_futures=True)


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """Stop the pool's worker processes in the middle of their ANTs calls (``_processes``:
    CPython's own record of them; Python 3.14 adds ``terminate_workers``)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _result(future) -> Outcome:
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise PreprocessError(f"a worker process died ({exc}), perhaps out of memory; the subjects "
                              "finished so far are kept: run again (with fewer workers=) to "
                              "continue") from exc


def _collect(outcomes, on_bad_subject: str, bar) -> list[Outcome]:
    """Outcomes as they come: logged (a finished subject in the log file only), counted on the
    bar; the first bad one stops a ``fail`` run."""
    done = []
    failed = 0
    for outcome in outcomes:
        done.append(outcome)
        bar.update()
        if outcome.error is None:
            log_to_files(logging.INFO, f"{outcome.subject_id}: done in "
                                       f"{outcome.record['seconds']['total']:.0f} s")
            continue
        failed += 1
        bar.set_postfix(bad=failed)
        log.warning("bad subject %s", outcome.error)
        if outcome.detail:  # an unforeseen error: its traceback, for whoever debugs the step
            log_to_files(logging.WARNING, outcome.detail)
        if on_bad_subject == "fail":
            raise PreprocessError(f"{outcome.error} (on_bad_subject=fail: stopped; subjects "
                                  "finished are kept, and a rerun skips them; "
                                  "on_bad_subject=exclude goes on without it)")
    return done

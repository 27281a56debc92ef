"""The evaluate stage's phases: each says what it does, shows its progress and records its time.

A phase logs one line when it starts (what it does, on how much) and draws a tqdm bar on stderr,
described by the phase and the method at hand (``perturbation (AOPC): dtd``); its wall-clock
seconds go to ``evaluate.json``'s ``phase_seconds``.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager

log = logging.getLogger("brainage.evaluate")


class Phase:
    """A running phase: its bar and the method it is at."""

    def __init__(self, name: str, bar):
        self.name, self.bar = name, bar

    def at(self, what: str) -> None:
        """Describe the bar by the phase and what it works on now (a method, a layer, a step)."""
        self.bar.set_description(f"{self.name}: {what}" if what else self.name)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)


@contextmanager
def phase(name: str, what: str, total: int, seconds: dict, progress: bool = True,
          unit: str = "map"):
    """Run a phase: log ``<name>: <what>``, show a bar of ``total`` ``unit`` s, and record its
    seconds in ``seconds[name]``."""
    from tqdm.auto import tqdm

    log.info("%s: %s", name, what)
    start = time.perf_counter()
    with tqdm(total=total, desc=name, unit=unit, disable=not progress, dynamic_ncols=True) as bar:
        yield Phase(name, bar)
    seconds[name] = round(seconds.get(name, 0.0) + time.perf_counter() - start, 1)

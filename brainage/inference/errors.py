"""The infer stage's error: a :class:`~brainage.errors.BrainageError`, so the CLI prints one line."""
from __future__ import annotations

from brainage.errors import BrainageError


class InferError(BrainageError):
    """A bad inference request (no explain run, unknown method or group); the message says why."""

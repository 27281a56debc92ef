"""One hierarchy of user-facing errors.

Every error a user can fix (bad input, a bad setting, a used run directory) derives from
:class:`BrainageError`; a stage's command-line wrapper (:func:`brainage.runs.run_stage`) catches it,
prints ``error: <message>`` and exits with status 2, without a traceback. Anything else is a bug and
keeps its traceback. Messages name the culprit (subject, file, setting) and what was expected.
``BrainageError`` is a ``ValueError``, so callers that catch bad values keep working.
"""
from __future__ import annotations


class BrainageError(ValueError):
    """Root of the errors a user can fix; the message says what to change."""


class RunDirError(BrainageError):
    """A run directory that must not be written: it holds a finished or running run."""


class DataError(BrainageError):
    """Bad input data. The message says which subject/file and what was expected."""


class AtlasError(BrainageError):
    """An atlas or its label table is missing, unreadable or inconsistent; the message names the file."""


class ModelError(BrainageError):
    """A network that cannot be built or does not fit the data."""


class DistributionError(BrainageError):
    """A distribution the machine or the batch size cannot provide; the message says why."""


class TrainError(BrainageError):
    """A training set-up the stage refuses: a used run directory, nothing to resume, a mismatch."""


class TrainedRunError(BrainageError):
    """A finished training run that cannot be used as asked (not found, unfinished, its config,
    split or model at odds with the data, a bad explainer); the message names the run or file."""


class ExplainError(BrainageError):
    """A bad explain request; the message says what to fix."""


class EvaluateError(BrainageError):
    """A bad evaluate request; the message says what to fix."""


class InferError(BrainageError):
    """A bad inference request (no explain run, unknown method or group); the message says why."""


class SegmentationError(BrainageError):
    """A bad setting of the U-Net experiment (seed 003): the message names the key and what was expected."""


class PredictError(BrainageError):
    """A cohort a trained model cannot be applied to (another grid, voxel size or preprocessing)
    or a bad predict request; the message says what differs and what to do."""


class EnsembleError(BrainageError):
    """Training runs that cannot form one ensemble (another task, grid, bins or correction, a run
    listed twice); the message names the member and what differs."""

"""Choose the Keras backend and the visible devices before Keras is imported, and check it worked.

Keras reads ``KERAS_BACKEND`` once, at its first import; TensorFlow and JAX read
``CUDA_VISIBLE_DEVICES`` / ``JAX_PLATFORMS`` once, when they start, and TensorFlow sizes its
intra-op thread pool from ``TF_NUM_INTRAOP_THREADS`` then. So these variables must be set before
anything imports them: the ``bench`` stage calls :func:`configure_environment` first.
"""
from __future__ import annotations

import os

from brainage.errors import BrainageError


def configure_environment(backend: str | None, device: str, threads: int | None = None) -> None:
    """Set the process environment for ``backend`` (None: leave ``KERAS_BACKEND`` as it is),
    ``device`` (``cpu`` hides accelerators from TensorFlow and JAX; ``gpu``/``auto`` do not) and
    ``threads`` (TensorFlow's intra-op pool, the one its convolutions use; None: its default).

    PyTorch's pool is set with ``torch.set_num_threads`` where it is used (the peer comparison);
    JAX's XLA CPU client sizes its own pool from the machine and has no such setting.
    """
    if threads is not None:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(int(threads))
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def active_backend(requested: str | None) -> str:
    """The Keras backend in use, checked against ``requested``.

    Raises
    ------
    BrainageError
        When Keras was imported before :func:`configure_environment` could choose ``requested``
        (e.g. ``bench`` called from a process that already runs another backend).
    """
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import backend_name

    try:
        name = backend_name()
    except RuntimeError as err:  # an unsupported KERAS_BACKEND: the message says which to set
        raise BrainageError(f"bench: {err}") from None
    if requested and name != requested:
        raise BrainageError(f"bench: backend={requested} requested, but Keras already runs on {name} in "
                            "this process (it was imported first); start a fresh process")
    return name

"""Target selection: which logit an explanation starts from.

Two halves, kept apart from the propagation so that new kinds of target only touch this
module: :func:`target_indices` turns the user's ``target`` argument into a ``(T, batch)``
array of class indices before the compiled graph runs, and :func:`select_targets` turns
the logits into the *seed* inside the graph: per target a weighting of the logits whose
weighted sum is the explained output. Layer-wise methods start from ``seed ⊙ logits``,
gradient methods back-propagate ``seed`` as the cotangent.
"""

from __future__ import annotations

import numpy as np
from keras import ops

# In a target array, this index means "the class the model predicts for that input".
PREDICTED = -1


def is_all_classes(target) -> bool:
    """Whether ``target`` asks for every class in turn (maps gain a leading class axis)."""
    return isinstance(target, str) and target == "all"


def target_indices(target, labels, batch: int, n_classes: int, who: str) -> np.ndarray:
    """Targets as a ``(T, batch)`` int32 array; :data:`PREDICTED` means the predicted class.

    Parameters
    ----------
    target : "predicted", "true", "all" or int
        See :meth:`brainage.relevance.Analyzer.explain`.
    labels : array-like of int or None
        True classes, for ``target="true"``.
    batch, n_classes : int
    who : str
        Method name for error messages.
    """
    if isinstance(target, str):
        if target == "predicted":
            return np.full((1, batch), PREDICTED, dtype=np.int32)
        if target == "all":
            return np.repeat(np.arange(n_classes, dtype=np.int32)[:, None], batch, axis=1)
        if target == "true":
            return _label_targets(labels, batch, n_classes, who)
        raise ValueError(
            f"{who}: target must be 'predicted', 'true', 'all' or a class index, got {target!r}"
        )
    if isinstance(target, (bool, np.bool_)):  # True == 1: never read a flag as class 1
        raise ValueError(f"{who}: target {target!r} is a boolean; use 'true' for the "
                         "true class or an int class index")
    if isinstance(target, (int, np.integer)):
        return checked_classes(np.full((1, batch), int(target)), n_classes, who)
    raise ValueError(f"{who}: target must be a string or an int, got {target!r}")


def _label_targets(labels, batch: int, n_classes: int, who: str) -> np.ndarray:
    if labels is None:
        raise ValueError(f"{who}: target='true' needs labels")
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if labels.shape != (batch,):
        raise ValueError(f"{who}: {labels.shape[0]} labels for a batch of {batch}")
    return checked_classes(labels, n_classes, who)[None, :]


def checked_classes(classes, n_classes: int, who: str) -> np.ndarray:
    """``classes`` as int32, or a ``ValueError`` naming the first one out of range."""
    classes = np.asarray(classes)
    bad = (classes < 0) | (classes >= n_classes)
    if bad.any():
        raise ValueError(
            f"{who}: class {int(classes[bad].flat[0])} out of range for a model "
            f"with {n_classes} outputs"
        )
    return classes.astype(np.int32)


def select_targets(logits, targets, n_classes: int):
    """Inside the compiled graph: the chosen classes, the seed and the explained outputs.

    Parameters
    ----------
    logits : tensor, shape (batch, n_classes)
    targets : tensor of int32, shape (T, batch)
        From :func:`target_indices`.

    Returns
    -------
    chosen : tensor of int32, shape (T, batch)
        :data:`PREDICTED` replaced by the arg-max class.
    seed : tensor, shape (T, batch, n_classes)
        Weights of the logits per target (one-hot for a single class).
    outputs : tensor, shape (T, batch)
        ``Σ seed · logits``: the value the map explains.
    """
    predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
    chosen = ops.where(targets < 0, predicted[None, :], targets)
    seed = ops.one_hot(chosen, n_classes, dtype=logits.dtype)
    outputs = ops.sum(seed * logits[None], axis=-1)
    return chosen, seed, outputs

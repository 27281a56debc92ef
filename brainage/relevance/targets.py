"""Target selection on the host: which quantity an explanation explains, for which class.

A target is a *base* (which class ``c``: the predicted one, the true one, every class in turn
or a fixed index) and an optional *contrast* (what ``c`` is compared with):

==================  ====================================  =======================================
contrast            explained value                        target string
==================  ====================================  =======================================
None                ``z_c``                                ``"predicted"``, ``"true"``, ``2``
``k`` (int)         ``z_c − z_k``                          ``"predicted-vs-3"``
``"runnerup"``      ``z_c − z_k*``, ``k*`` the largest     ``"predicted-vs-runnerup"``
                    other logit
``"mean"``          ``z_c − mean_{k≠c} z_k``               ``"predicted-vs-mean"``
``"logodds"``       ``log p_c / (1 − p_c)``                ``"predicted-logodds"``
                    ``= z_c − log Σ_{k≠c} exp z_k``
==================  ====================================  =======================================

``parse_target`` accepts either form (``target="predicted", contrast="mean"`` or
``target="predicted-vs-mean"``) and returns one :class:`TargetSpec`; :func:`target_indices` turns it
into the class arrays the compiled graph takes. What the graph does with them lives in
:mod:`brainage.relevance.heads`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# In a target array, this index means "the class the model predicts for that input"; in a
# contrast array, "the runner-up class" (resolved inside the graph) or "no contrast class".
PREDICTED = -1

BASES = ("predicted", "true", "all")
CONTRASTS = ("runnerup", "mean", "logodds")
_TARGET_STRING = re.compile(r"^(?P<base>predicted|true|all|\d+)(?:-vs-(?P<other>\w+)|-(?P<logodds>logodds))?$")


@dataclass(frozen=True)
class TargetSpec:
    """What to explain: a base class choice and an optional contrast.

    Attributes
    ----------
    base : "predicted", "true", "all" or int
    contrast : None, int, "runnerup", "mean" or "logodds"
    """

    base: str | int
    contrast: str | int | None = None

    @property
    def mode(self) -> str | None:
        """The contrast kind the graph is built for: None, "class", "runnerup", "mean", "logodds"."""
        if self.contrast is None or isinstance(self.contrast, str):
            return self.contrast
        return "class"

    @property
    def all_classes(self) -> bool:
        """Every class in turn: maps gain a leading class axis."""
        return self.base == "all"

    @property
    def tag(self) -> str:
        """The target as one string (``"predicted-vs-mean"``), as the explain stage names it."""
        if self.contrast is None:
            return str(self.base)
        if self.contrast == "logodds":
            return f"{self.base}-logodds"
        return f"{self.base}-vs-{self.contrast}"


def is_all_classes(target) -> bool:
    """Whether ``target`` asks for every class in turn (maps gain a leading class axis)."""
    return isinstance(target, str) and (target == "all" or target.startswith("all-"))


def _check_int(value, what: str, who: str) -> int:
    if isinstance(value, (bool, np.bool_)):  # True == 1: never read a flag as class 1
        raise ValueError(f"{who}: {what} {value!r} is a boolean; use 'true' for the true class "
                         "or an int class index")
    return int(value)


def _parse_contrast(contrast, who: str):
    if contrast is None:
        return None
    if isinstance(contrast, str):
        if contrast in CONTRASTS:
            return contrast
        if contrast.isdigit():
            return int(contrast)
        raise ValueError(f"{who}: contrast must be a class index or one of {list(CONTRASTS)}, "
                         f"got {contrast!r}")
    if isinstance(contrast, (int, np.integer, bool, np.bool_)):
        return _check_int(contrast, "contrast", who)
    raise ValueError(f"{who}: contrast must be a class index or one of {list(CONTRASTS)}, got {contrast!r}")


def parse_target(target, contrast=None, default_contrast=None, who: str = "analyzer") -> TargetSpec:
    """One :class:`TargetSpec` from the user's ``target`` and ``contrast`` arguments.

    Parameters
    ----------
    target : str or int
        ``"predicted"``, ``"true"``, ``"all"``, a class index, or any of these with a contrast
        suffix: ``"-vs-<k>"``, ``"-vs-runnerup"``, ``"-vs-mean"``, ``"-logodds"``.
    contrast : None, int or str, optional
        The contrast as its own argument; not together with a suffix in ``target``.
    default_contrast : None, int or str, optional
        Used when neither ``target`` nor ``contrast`` names one (an analyzer's configured default).
    who : str
        Method name for error messages.
    """
    if isinstance(target, str):
        match = _TARGET_STRING.match(target)
        if match is None:
            raise ValueError(
                f"{who}: target must be 'predicted', 'true', 'all' or a class index, optionally "
                f"with '-vs-<class>', '-vs-runnerup', '-vs-mean' or '-logodds'; got {target!r}"
            )
        base = match["base"]
        base = int(base) if base.isdigit() else base
        suffix = "logodds" if match["logodds"] else match["other"]
        if suffix is not None and contrast is not None:
            raise ValueError(f"{who}: target {target!r} already names a contrast; do not also "
                             f"pass contrast={contrast!r}")
        contrast = suffix if suffix is not None else contrast
    elif isinstance(target, (int, np.integer, bool, np.bool_)):
        base = _check_int(target, "target", who)
    else:
        raise ValueError(f"{who}: target must be a string or an int, got {target!r}")
    chosen = _parse_contrast(contrast, who)
    if chosen is None:
        chosen = _parse_contrast(default_contrast, who)
    return TargetSpec(base, chosen)


def target_indices(spec: TargetSpec, labels, batch: int, n_classes: int, who: str):
    """Class arrays for the compiled graph.

    Returns
    -------
    classes : numpy.ndarray of int32, shape (T, batch)
        The explained class; :data:`PREDICTED` means the predicted class.
    others : numpy.ndarray of int32, shape (T, batch)
        The contrast class for ``contrast=k`` (``k``); :data:`PREDICTED` otherwise (for
        ``"runnerup"`` the graph then picks the largest other logit).
    """
    if spec.contrast is not None and n_classes < 2:
        raise ValueError(
            f"{who}: target {spec.tag!r} contrasts classes, but the model has {n_classes} output "
            "(a regression): explain it with target='predicted'"
        )
    if spec.base == "predicted":
        classes = np.full((1, batch), PREDICTED, dtype=np.int32)
    elif spec.base == "all":
        classes = np.repeat(np.arange(n_classes, dtype=np.int32)[:, None], batch, axis=1)
    elif spec.base == "true":
        classes = _label_targets(labels, batch, n_classes, who)
    else:
        classes = checked_classes(np.full((1, batch), spec.base), n_classes, who)
    others = np.full(classes.shape, PREDICTED, dtype=np.int32)
    if spec.mode == "class":
        others[:] = checked_classes(np.asarray(spec.contrast), n_classes, who)
    return classes, others


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


__all__ = ["PREDICTED", "BASES", "CONTRASTS", "TargetSpec", "parse_target", "target_indices",
           "checked_classes", "is_all_classes"]

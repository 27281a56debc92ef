"""What is scored: (method, target mode) pairs, and how a target mode is explained for a fixed class.

A target mode is what the explain stage calls a target: an *anchor* that says which class ``c`` a map
is about — ``predicted``, ``true`` or a class index — and an optional *suffix* that says what the map
explains about ``c`` (none: the logit ``z_c``; the relevance engine adds contrasts such as
``-vs-mean``, ``-vs-runnerup``, ``-vs-<k>`` and ``-logodds``). The suffix is passed to the engine
unread, so any target the engine accepts can be scored.

The anchor is resolved once, on the trained network, into one class per subject. Every later
explanation of that subject — by a randomised copy of the network, or of the youngest and oldest
class for the class-map check — explains a *fixed* class: the engine's target ``"true" + suffix``
with the class as the label. So only the weights (or the class) change between the maps compared.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from brainage.errors import EvaluateError

_MODE = re.compile(r"^(?P<anchor>predicted|true|\d+)(?P<suffix>-.+)?$")


@dataclass(frozen=True)
class TargetMode:
    """A target mode: its text, the anchor class choice and the suffix handed to the engine.

    Attributes
    ----------
    text : str
        As written in the config (``"predicted"``, ``"true"``, ``"2"``, ``"predicted-vs-mean"``).
    anchor : str or int
        ``"predicted"``, ``"true"`` or a class index.
    suffix : str
        ``""`` or the contrast suffix (``"-vs-mean"``), passed to the engine as written.
    """

    text: str
    anchor: str | int
    suffix: str

    def classes(self, logits: np.ndarray, labels: np.ndarray,
                predicted: np.ndarray | None = None) -> np.ndarray:
        """The class each subject's map is about: the predicted class (``predicted`` where the
        model's prediction is not the arg-max of ``logits``, as an ensemble's mean probabilities;
        else the arg-max), the label or the index."""
        if self.anchor == "predicted":
            chosen = np.asarray(logits).argmax(axis=1) if predicted is None else predicted
            return np.asarray(chosen).astype(np.int64)
        if self.anchor == "true":
            return np.asarray(labels, dtype=np.int64).copy()
        n_classes = np.asarray(logits).shape[1]
        if not 0 <= int(self.anchor) < n_classes:
            raise EvaluateError(f"target {self.text!r}: class {self.anchor} out of range for a "
                                f"model with {n_classes} outputs")
        return np.full(len(logits), int(self.anchor), dtype=np.int64)

    @property
    def fixed_class_target(self) -> str:
        """The engine target that explains a given class (passed as ``labels``) in this mode."""
        return f"true{self.suffix}"


def parse_target_mode(value) -> TargetMode:
    """A :class:`TargetMode` from a config value (a string or a class index).

    ``all`` is refused: its maps gain a class axis; list the classes (``[0, 1, 2]``) instead.
    A :class:`TargetMode` is returned as it is.
    """
    if isinstance(value, TargetMode):
        return value
    if isinstance(value, bool):
        raise EvaluateError(f"target={value!r} is a boolean; use predicted, true or a class index")
    text = str(value)
    match = _MODE.match(text)
    if match is None:
        raise EvaluateError(
            f"target={text!r}; expected predicted or true, a class index, or either with a "
            "contrast suffix the relevance engine accepts (e.g. predicted-vs-mean); 'all' is "
            "scored by listing the classes: target=[0,1,2]")
    anchor = match["anchor"]
    return TargetMode(text, int(anchor) if anchor.isdigit() else anchor, match["suffix"] or "")


@dataclass(frozen=True)
class ScoredPair:
    """One row of the scorecard: an explainer (its config key) explaining in one target mode."""

    method: str
    target: TargetMode

    @property
    def key(self) -> tuple[str, str]:
        """``(method, target text)``: the pair's columns in every table."""
        return self.method, self.target.text


def scored_pairs(methods: Iterable[str], targets: Iterable, pairs: Iterable[str]) -> list[ScoredPair]:
    """Every method in every target mode of ``targets``, then the extra ``method:target`` pairs.

    Duplicates are scored once; a pair naming a method outside ``methods`` is refused (its
    explainer must be selected, ``explainer=[…]``, so that its parameters are known).
    """
    methods = list(methods)
    modes = [parse_target_mode(t) for t in targets]
    if not modes:
        raise EvaluateError("target=[] scores nothing; give at least one target mode")
    scored = [ScoredPair(m, mode) for mode in modes for m in methods]
    for text in pairs:
        method, sep, target = str(text).partition(":")
        if not sep or not method or not target:
            raise EvaluateError(f"pairs: {text!r} is not method:target (e.g. dtd:predicted-vs-mean)")
        if method not in methods:
            raise EvaluateError(f"pairs: {text!r} names {method!r}, which is not among the "
                                f"selected explainers {methods}; add it to explainer=[…]")
        scored.append(ScoredPair(method, parse_target_mode(target)))
    unique = {pair.key: pair for pair in scored}
    return list(unique.values())

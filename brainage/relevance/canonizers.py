"""Canonizers: rewrite a parsed network into an equivalent one the rules explain better.

A canonizer takes the chain of :class:`~brainage.relevance._graph.Step` objects parsed from a
Keras model and returns a chain that computes the same function (Zennit's canonizers, e.g.
``SequentialMergeBatchNorm``, are the model). Analyzers take them as
``canonizers=[MergeBatchNorm()]``; the older ``bn_mode`` keyword is an alias resolved here,
in :func:`resolve_canonizers`, and nowhere else.

Steps are snapshots of the model's weights, so a canonizer returns new steps instead of
patching the model, and there is nothing to undo afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from brainage.relevance._graph import Step


class Canonizer:
    """Base class: ``apply(steps) -> steps``, an equivalent chain, input to output.

    Subclasses set ``name`` and implement :meth:`apply`. They must not modify the steps
    they are given (return new ones) and should keep every layer name in the chain, so the
    conservation trace has the same keys with and without the canonizer.
    """

    name: ClassVar[str] = "canonizer"

    def apply(self, steps: list[Step]) -> list[Step]:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


@dataclasses.dataclass(frozen=True, repr=False)
class MergeBatchNorm(Canonizer):
    """Fold every BatchNormalization into the Dense/Conv layer right before it.

    Per output channel ``W' = W·γ/σ`` and ``b' = (b − μ)·γ/σ + β``, computed in float64;
    the rule then sees the true affine map (seed 000 ref. [7], canonisation). The
    BatchNormalization step stays in the chain as an identity, so trace keys do not change.

    Raises ``ValueError`` naming the BatchNormalization layer when no Dense/Conv without
    activation comes right before it.
    """

    name: ClassVar[str] = "merge_batch_norm"

    def apply(self, steps: list[Step]) -> list[Step]:
        merged: list[Step] = []
        for step in steps:
            if step.kind != "bn":
                merged.append(step)
                continue
            linear = merged[-1] if merged else None
            _check_mergeable(step, linear)
            merged[-1] = _merge(linear, step)
            merged.append(Step(step.name, "identity", step.layer))
        return merged


def _check_mergeable(bn: Step, before: Step | None) -> None:
    if before is not None and before.kind == "linear" and not before.relu and not before.folded_bn:
        return
    if before is None:
        found = "nothing"
    else:
        found = f"{before.name!r} ({before.kind}{', relu' if before.relu else ''})"
    raise ValueError(
        f"layer {bn.name!r} (BatchNormalization): MergeBatchNorm (bn_mode='canonize') needs a "
        f"Dense/Conv layer without activation right before it, found {found}; use "
        "bn_mode='passthrough' (no canonizer)"
    )


def _merge(linear: Step, bn: Step) -> Step:
    scale = bn.scale.astype(np.float64)
    shift = bn.shift.astype(np.float64)
    bias = linear.bias.astype(np.float64) if linear.bias is not None else 0.0
    return dataclasses.replace(
        linear,
        kernel=(linear.kernel.astype(np.float64) * scale).astype(linear.kernel.dtype),
        bias=(bias * scale + shift).astype(linear.kernel.dtype),
        folded_bn=bn.name,
    )


# The bn_mode alias: each mode names the canonizers it stands for (the one place it is mapped).
BN_MODES: dict[str, tuple[type[Canonizer], ...]] = {
    "passthrough": (),
    "canonize": (MergeBatchNorm,),
}


def resolve_canonizers(
    canonizers: Sequence[Canonizer] | None = None, bn_mode: str | None = None
) -> tuple[Canonizer, ...]:
    """The canonizers an analyzer applies, from ``canonizers`` or the ``bn_mode`` alias.

    Parameters
    ----------
    canonizers : sequence of Canonizer, optional
        Applied in order to the parsed chain.
    bn_mode : {"passthrough", "canonize"}, optional
        Alias: ``"passthrough"`` is no canonizer (relevance crosses BatchNormalization
        unchanged, seed 000 eq. 3.1), ``"canonize"`` is ``[MergeBatchNorm()]``.
        Give either this or ``canonizers``; neither means passthrough.
    """
    if canonizers is not None and bn_mode is not None:
        raise TypeError(
            f"give canonizers or bn_mode, not both (canonizers={list(canonizers)!r}, "
            f"bn_mode={bn_mode!r})"
        )
    if bn_mode is not None:
        if bn_mode not in BN_MODES:
            raise ValueError(f"bn_mode must be 'passthrough' or 'canonize', got {bn_mode!r}")
        return tuple(canonizer() for canonizer in BN_MODES[bn_mode])
    resolved = tuple(canonizers or ())
    for canonizer in resolved:
        if not isinstance(canonizer, Canonizer):
            raise TypeError(
                f"canonizers: expected Canonizer objects such as MergeBatchNorm(), got "
                f"{canonizer!r}"
            )
    return resolved


def bn_mode_of(canonizers: Sequence[Canonizer]) -> str:
    """The ``bn_mode`` name that describes ``canonizers`` (for reports and ``repr``)."""
    merges = any(isinstance(c, MergeBatchNorm) for c in canonizers)
    return "canonize" if merges else "passthrough"


__all__ = ["Canonizer", "MergeBatchNorm", "BN_MODES", "resolve_canonizers", "bn_mode_of"]

"""The explained quantity on top of the logits, inside the compiled graph.

:func:`select_head` turns the logits and the class arrays of
:func:`~brainage.relevance.targets.target_indices` into a :class:`Head`: the explained value per
target, its gradient with respect to the logits (the cotangent gradient methods start from) and
the relevance of the *top units* layer-wise methods start from.

For a plain target the top units are the logits themselves and the relevance is ``z_c`` on unit
``c`` (the seed's DTD, unchanged). A contrast adds a virtual difference layer ``V`` on top of the
logits (:func:`virtual_layer`); :func:`merge_virtual_layer` folds it into the last Dense/Conv layer
(``W' = W V``, ``b' = b V``) *before* its rule is applied, so the rule sees the contrast's own
weights (``w_c − w_k``) instead of splitting ``z_c`` and ``z_k`` separately:

* ``"class"``/``"runnerup"``: units ``(c, k)`` computing ``z_c − z_k``; relevance ``z_c − z_k``
  on unit ``(c, k)``.
* ``"mean"``: units ``c`` computing ``z_c − mean_{k≠c} z_k``; relevance on unit ``c``.
* ``"logodds"``: the units ``(c, k)``, ``k ≠ c``, followed by Montavon's neuralised softmin
  ``log p_c/(1 − p_c) = −log Σ_{k≠c} exp(−(z_c − z_k))``, whose relevance goes to unit ``(c, k)``
  in proportion ``π_k = p_k / (1 − p_c)`` (a softmax over the other classes): ``R_(c,k) = π_k ·
  log p_c/(1 − p_c)``. The shares sum to one, so the units hold exactly the log-odds, and a
  conservative rule below passes exactly that to the input.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from keras import ops

from brainage.relevance._graph import Step

# Steps that may follow the last Dense/Conv layer when a virtual layer is merged into it: they
# act on each channel alike, so they commute with a linear map over the channels.
_TAIL_KINDS = ("identity", "reshape", "avgpool")


@dataclasses.dataclass
class Head:
    """What the propagation starts from, per target ``T`` and input ``B``.

    Attributes
    ----------
    chosen, other : tensor of int32, shape (T, B)
        Explained class; contrast class (−1 when the contrast has none).
    outputs : tensor, shape (T, B)
        The explained value (what a conservative map sums to).
    cotangent : tensor, shape (T, B, n_classes) (per-voxel outputs: (T, B, *spatial, channels))
        Gradient of ``outputs`` with respect to the logits.
    relevance : tensor, shape (T, B, units) (per-voxel outputs: like ``cotangent``)
        Relevance of the top units (the logits, or the virtual units of :func:`virtual_layer`).
    scale : tensor, shape (T, B)
        Magnitude relative errors are measured against (``|outputs|`` unless a method says).
    """

    chosen: object
    other: object
    outputs: object
    cotangent: object
    relevance: object
    scale: object


def virtual_layer(mode: str | None, n_classes: int) -> np.ndarray | None:
    """The difference layer ``V`` (n_classes × units) of a contrast mode; None for no contrast."""
    k = n_classes
    if mode is None:
        return None
    if mode == "mean":
        v = np.full((k, k), -1.0 / (k - 1))
        np.fill_diagonal(v, 1.0)
        return v  # float64: merge_virtual_layer rounds it to the engine's type
    if mode not in ("class", "runnerup", "logodds"):
        raise ValueError(f"unknown contrast mode {mode!r}")
    v = np.zeros((k, k * k), dtype=np.float32)
    for c in range(k):
        for other in range(k):
            if other != c:
                v[c, c * k + other] = 1.0
                v[other, c * k + other] = -1.0
    return v


def merge_virtual_layer(steps: list[Step], virtual: np.ndarray) -> tuple[list[Step], int]:
    """The chain with ``virtual`` folded into its last Dense/Conv layer, and that layer's index.

    Raises ``ValueError`` naming the layer when the last Dense/Conv layer has a ReLU, or when
    something other than Dropout, a linear activation, Flatten or global average pooling follows
    it.
    """
    last = max(i for i, s in enumerate(steps) if s.kind == "linear")
    if steps[last].relu:
        raise ValueError(
            f"contrastive targets merge a difference layer into the logits layer "
            f"{steps[last].name!r}, but it applies a ReLU: the logits must be linear"
        )
    for step in steps[last + 1:]:
        if step.kind not in _TAIL_KINDS or (step.kind == "avgpool" and not _is_global(step)):
            raise ValueError(
                f"contrastive targets merge a difference layer into the last Dense/Conv layer "
                f"{steps[last].name!r}, but layer {step.name!r} ({type(step.layer).__name__}) "
                "follows it; only Dropout, Flatten and global average pooling may"
            )
    top = steps[last]
    dtype = top.kernel.dtype
    virtual = virtual.astype(dtype).astype(np.float64)  # −1/(k−1) as the engine's type holds it
    kernel = np.tensordot(top.kernel.astype(np.float64), virtual, axes=([-1], [0]))
    bias = None if top.bias is None else top.bias.astype(np.float64) @ virtual
    merged = dataclasses.replace(
        top, kernel=kernel.astype(dtype), bias=None if bias is None else bias.astype(dtype)
    )
    return steps[:last] + [merged] + steps[last + 1:], last


def chain_for(steps: list[Step], virtual: np.ndarray | None) -> tuple[list[Step], int | None]:
    """``(steps, top)``: :func:`merge_virtual_layer`, or the chain unchanged (top None) without
    a virtual layer."""
    return (steps, None) if virtual is None else merge_virtual_layer(steps, virtual)


def _is_global(step: Step) -> bool:
    return not hasattr(step.layer, "pool_size")


def select_head(logits, classes, others, mode: str | None) -> Head:
    """The :class:`Head` for ``logits`` (B, n_classes) and the class arrays (T, B)."""
    n = int(logits.shape[-1])
    z = logits[None]
    predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
    chosen = ops.where(classes < 0, predicted[None, :], classes)
    onehot = ops.one_hot(chosen, n, dtype=logits.dtype)
    if mode is None:
        outputs = ops.sum(onehot * z, axis=-1)
        return Head(chosen, ops.zeros_like(chosen) - 1, outputs, onehot, onehot * z, ops.abs(outputs))
    masked = ops.where(onehot > 0, -np.inf, z)  # the other classes' logits
    if mode == "mean":
        cotangent = onehot - (1.0 - onehot) / (n - 1)
        outputs = ops.sum(cotangent * z, axis=-1)
        return Head(chosen, ops.zeros_like(chosen) - 1, outputs, cotangent,
                    onehot * outputs[..., None], ops.abs(outputs))
    if mode == "logodds":
        z_c = ops.sum(onehot * z, axis=-1)
        log_rest = ops.logsumexp(masked, axis=-1)
        outputs = z_c - log_rest
        shares = ops.exp(masked - log_rest[..., None])  # π_k = p_k / (1 − p_c), 0 at c
        pairs = onehot[..., :, None] * (shares * outputs[..., None])[..., None, :]
        relevance = ops.reshape(pairs, tuple(pairs.shape[:2]) + (n * n,))
        return Head(chosen, ops.zeros_like(chosen) - 1, outputs, onehot - shares, relevance,
                    ops.abs(outputs))
    runner_up = ops.cast(ops.argmax(masked, axis=-1), "int32")
    other = ops.where(others < 0, runner_up, others)
    cotangent = onehot - ops.one_hot(other, n, dtype=logits.dtype)
    outputs = ops.sum(cotangent * z, axis=-1)
    unit = ops.one_hot(chosen * n + other, n * n, dtype=logits.dtype)
    return Head(chosen, other, outputs, cotangent, unit * outputs[..., None], ops.abs(outputs))


def region_head(outputs, classes, mask) -> Head:
    """The :class:`Head` of a region of a per-voxel output (``Analyzer.explain(output_mask=...)``).

    Parameters
    ----------
    outputs : tensor, shape (B, *spatial, channels)
        Per-voxel logits.
    classes : tensor of int32, shape (T, B)
        The explained channel per target.
    mask : tensor, shape (B, *spatial)
        1.0 on the output voxels explained, else 0.0.

    The explained value is ``Σ_{v∈mask} z_{v,c}``; the top relevance is ``z_{v,c}`` on each masked
    voxel of channel ``c`` (what a conservative rule below passes on in total).
    """
    n = int(outputs.shape[-1])
    onehot = ops.one_hot(classes, n, dtype=outputs.dtype)  # (T, B, C)
    spatial = len(outputs.shape) - 2
    onehot = ops.reshape(onehot, tuple(onehot.shape[:2]) + (1,) * spatial + (n,))
    cotangent = onehot * mask[None, ..., None]
    relevance = cotangent * outputs[None]
    explained = ops.sum(relevance, axis=tuple(range(2, len(relevance.shape))))
    return Head(classes, ops.zeros_like(classes) - 1, explained, cotangent, relevance,
                ops.abs(explained))


__all__ = ["Head", "virtual_layer", "merge_virtual_layer", "chain_for", "select_head", "region_head"]

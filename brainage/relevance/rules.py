"""Relevance rules for linear layers (Dense, Conv1D/2D/3D).

Every rule redistributes the relevance ``R_j`` of a layer's outputs onto its inputs as

    R_i = Σ_j q_ij / (Σ_i' q_i'j + extra_j) · R_j

with a rule-specific ``q_ij`` (seed 000 §2.2.2, seed 001 §2.2). The engine never builds
``q``: for ``q_ij = x_i ρ(w)_ij`` it evaluates ``z = ρ(W)·x`` with the layer's own op and gets
``Σ_j ρ(w)_ij s_j`` as one vector-Jacobian product. Modified forwards on the layer input
are fused into the layer's own forward pass (extra output channels), so a rule costs
about one transposed convolution on top of the forward.

Rules see inputs ``a`` of shape (batch, ...) and a list of relevance tensors (one per
explained class) shaped like the layer output. They return the input relevance and, per
relevance tensor, its *sink*: the relevance the layer absorbed (the shares of the bias and of
``ε`` in the denominator, and the relevance of outputs whose denominator is zero), computed on
the output side as ``Σ_j (R_j − Σ_i q_ij · R_j / d_j)``. Input relevance plus sink equals the
output relevance, so the books balance layer by layer even for rules that do not conserve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from keras import ops

from brainage.relevance._backend import value_and_vjp

# Denominators with |z| below this are treated as zero: that output's relevance is dropped
# (it shows as a leak in the conservation trace) instead of producing inf/NaN.
ZERO_DENOMINATOR = 1e-30


def safe_divide(numerator, denominator):
    """``numerator / denominator``, and 0 where ``|denominator| ≤ ZERO_DENOMINATOR``."""
    ok = ops.abs(denominator) > ZERO_DENOMINATOR
    return ops.where(ok, numerator / ops.where(ok, denominator, 1.0), 0.0)


def _positive(w):
    return np.maximum(w, 0.0).astype(w.dtype)


def _negative(w):
    return np.minimum(w, 0.0).astype(w.dtype)


def _concat_terms(step, terms):
    """One linear map over channel-concatenated inputs: a single (transposed) conv per rule."""
    if len(terms) == 1:
        return terms[0][0], terms[0][1], None
    inputs = [x for x, _ in terms]
    sizes = [int(x.shape[-1]) for x in inputs]
    kernel = np.concatenate([k for _, k in terms], axis=-2)
    return ops.concatenate(inputs, axis=-1), kernel, sizes


def sum_per_input(r):
    """Sum over every axis but the first (batch)."""
    return ops.sum(r, axis=tuple(range(1, len(r.shape))))


def redistribute(step, terms, relevances, denominator=None, bias=None, stabilize=safe_divide):
    """Generic rule with ``q_ij = Σ_k x_k,i · K_k,ij``.

    Parameters
    ----------
    step : Step
        The linear layer (provides ``step.linear(x, kernel)``).
    terms : list of (tensor, numpy.ndarray)
        Pairs ``(x_k, K_k)``: an input-shaped tensor and a kernel shaped like the layer's.
        Several terms are concatenated along channels, so they cost one forward/backward.
    relevances : list of tensors
        Output relevance, one per explained class.
    denominator : tensor, optional
        ``Σ_k K_k·x_k`` if already known (computed with the layer's forward pass); otherwise
        it is evaluated here. When given, the forward inside the VJP is dead code that the
        compiler removes: only the transposed map runs.
    bias : numpy.ndarray, optional
        Added to the denominator only (the relevance it would take is absorbed).
    stabilize : callable
        ``stabilize(R, z) -> R / z`` with the rule's treatment of small ``z``.

    Returns
    -------
    relevances : list of tensors
        Input relevance, one per explained class.
    sinks : list of tensors, shape (batch,)
        Relevance absorbed by the bias, the stabiliser and zero denominators, per class.
    """
    x, kernel, sizes = _concat_terms(step, terms)
    z, vjp = value_and_vjp(lambda v: step.linear(v, kernel), [x])
    if denominator is not None:
        z = denominator
    full = z + bias if bias is not None else z
    out, sinks = [], []
    for relevance in relevances:
        share = stabilize(relevance, full)
        r_in = x * vjp(share)[0]
        if sizes is not None:
            parts = ops.split(r_in, np.cumsum(sizes)[:-1].tolist(), axis=-1)
            r_in = parts[0]
            for p in parts[1:]:
                r_in = r_in + p
        out.append(r_in)
        sinks.append(sum_per_input(relevance - z * share))
    return out, sinks


class Rule:
    """Base class: a rule maps (layer, inputs, output relevance) to input relevance and sinks.

    ``forward_kernels(step)`` lists modified kernels to apply to the layer input ``a``;
    the engine evaluates them fused with the layer's own forward (one convolution with
    extra output channels, nearly free) and hands the results to ``relevance`` as
    ``extras``, together with ``z`` = the layer's own linear output without bias.
    """

    def forward_kernels(self, step) -> list:
        return []

    def relevance(self, step, a, relevances, z, extras):  # pragma: no cover - interface
        """``(input relevances, sinks)``, one of each per relevance tensor (see the module)."""
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


@dataclass(repr=False)
class Epsilon(Rule):
    """LRP-ε: ``q_ij = a_i w_ij``, denominator ``z_j + ε·sign(z_j)`` with ``z_j`` incl. bias.

    ``epsilon=0`` is LRP-0 (zero denominators are then dropped, see ``safe_divide``).
    The bias and ε absorb relevance (reported as the layer's sink), so LRP-ε conserves only up
    to those terms. ``use_bias=False`` leaves the bias out of the denominator (Zennit's
    ``zero_params="bias"``): LRP-0 then conserves exactly and LRP-ε up to ε's share.
    """

    epsilon: float = 0.25
    use_bias: bool = True

    def relevance(self, step, a, relevances, z, extras):
        eps = float(self.epsilon)
        if eps == 0.0:
            stabilize = safe_divide
        else:

            def stabilize(r, d):
                return r / ops.where(d >= 0, d + eps, d - eps)

        bias = step.bias if self.use_bias else None
        return redistribute(step, [(a, step.kernel)], relevances, z, bias, stabilize)


class LRP0(Epsilon):
    """LRP-0: ``R_i = Σ_j a_i w_ij / z_j · R_j`` (gradient × input for ReLU nets)."""

    def __init__(self, use_bias: bool = True):
        super().__init__(epsilon=0.0, use_bias=use_bias)

    def __repr__(self):
        return "LRP0()" if self.use_bias else "LRP0(use_bias=False)"


@dataclass(repr=False)
class Gamma(Rule):
    """LRP-γ (seed 001 eq. 2.7): ``q_ij = a_i (w_ij + γ w_ij⁺)``, bias ``b + γ b⁺``.

    ``use_bias=False`` leaves the bias out of the denominator (then it conserves exactly).
    """

    gamma: float = 0.25
    use_bias: bool = True

    def _kernel(self, step):
        return (step.kernel + float(self.gamma) * _positive(step.kernel)).astype(step.kernel.dtype)

    def forward_kernels(self, step):
        return [self._kernel(step)]

    def relevance(self, step, a, relevances, z, extras):
        g = float(self.gamma)
        bias = None
        if step.bias is not None and self.use_bias:
            bias = (step.bias + g * _positive(step.bias)).astype(step.bias.dtype)
        return redistribute(step, [(a, self._kernel(step))], relevances, extras[0], bias)


@dataclass(repr=False)
class AlphaBeta(Rule):
    """LRP-αβ: ``R_i = Σ_j (α q⁺_ij/Σq⁺_j − β q⁻_ij/Σq⁻_j) R_j`` with ``q^± = (a_i w_ij)^±``.

    Biases are left out (as in DTD), so α − β = 1 conserves relevance; α=1, β=0 is z⁺.
    """

    alpha: float = 1.0
    beta: float = 0.0

    def forward_kernels(self, step):
        return [_positive(step.kernel)] if step.nonnegative_input else []

    def relevance(self, step, a, relevances, z, extras):
        w_pos, w_neg = _positive(step.kernel), _negative(step.kernel)
        if step.nonnegative_input:
            z_pos = extras[0]
            out, sinks = redistribute(step, [(a, w_pos)], relevances, z_pos)
            if self.beta != 0.0:  # for a ≥ 0: Σ a w⁻ = z − Σ a w⁺, no extra convolution
                neg, neg_sinks = redistribute(step, [(a, w_neg)], relevances, z - z_pos)
        else:
            a_pos, a_neg = ops.relu(a), -ops.relu(-a)
            out, sinks = redistribute(step, [(a_pos, w_pos), (a_neg, w_neg)], relevances)
            if self.beta != 0.0:
                neg, neg_sinks = redistribute(step, [(a_pos, w_neg), (a_neg, w_pos)], relevances)
        if self.alpha == 1.0 and self.beta == 0.0:
            return out, sinks
        alpha, beta = float(self.alpha), float(self.beta)
        # Σ R_in = α(ΣR − sink⁺) − β(ΣR − sink⁻): the rest of ΣR is this layer's sink.
        totals = [sum_per_input(r) for r in relevances]
        out = [alpha * r for r in out]
        sinks = [(1.0 - alpha) * t + alpha * s for t, s in zip(totals, sinks)]
        if beta != 0.0:
            out = [r - beta * n for r, n in zip(out, neg)]
            sinks = [s + beta * t - beta * ns for s, t, ns in zip(sinks, totals, neg_sinks)]
        return out, sinks


class ZPlus(AlphaBeta):
    """DTD z⁺ (seed 000 eq. 2.11): ``q_ij = a_i w_ij⁺`` for inputs ``a ≥ 0``.

    For inputs of unknown sign it uses the positive contributions ``(a_i w_ij)⁺``, which
    is the same thing on ReLU outputs. Outputs with ``Σ_i q_ij = 0`` (dead units) pass no
    relevance down; the loss is visible in the conservation trace.
    """

    def __init__(self):
        super().__init__(alpha=1.0, beta=0.0)

    def __repr__(self):
        return "ZPlus()"


@dataclass(repr=False)
class ZBox(Rule):
    """DTD zᴮ (seed 000 eq. 2.12) for box-constrained inputs ``low ≤ x ≤ high``.

    ``q_ij = a_i w_ij − l_i w_ij⁺ − h_i w_ij⁻``. ``low``/``high`` are scalars or arrays
    broadcastable to the layer input without its batch axis (per-voxel bounds).
    Defaults fit grey-matter probabilities: ``[0, 1]``.
    """

    low: float | np.ndarray = 0.0
    high: float | np.ndarray = 1.0

    def relevance(self, step, a, relevances, z, extras):
        terms = [(a, step.kernel)]
        denominator = z
        for bound, kernel in ((self.low, _positive(step.kernel)), (self.high, _negative(step.kernel))):
            bound = np.asarray(bound, dtype=step.kernel.dtype)
            if bound.ndim == 0 and float(bound) == 0.0:
                continue  # a zero bound adds nothing; skip its convolution
            x_bound = ops.zeros_like(a) + bound
            terms.append((x_bound, -kernel))
            denominator = denominator - step.linear(x_bound, kernel)
        return redistribute(step, terms, relevances, denominator)


@dataclass(repr=False)
class WSquare(Rule):
    """DTD w² (seed 000 eq. 2.10): ``q_ij = w_ij²``, independent of the input."""

    def relevance(self, step, a, relevances, z, extras):
        kernel = np.square(step.kernel)
        return redistribute(step, [(ops.ones_like(a), kernel)], relevances)


@dataclass(repr=False)
class Flat(Rule):
    """Flat rule: ``q_ij = 1`` for every connected pair (uniform spread over the receptive field)."""

    def relevance(self, step, a, relevances, z, extras):
        kernel = np.ones_like(step.kernel)
        return redistribute(step, [(ops.ones_like(a), kernel)], relevances)


RULES = {
    "lrp0": LRP0,
    "epsilon": Epsilon,
    "gamma": Gamma,
    "alpha_beta": AlphaBeta,
    "zplus": ZPlus,
    "zbox": ZBox,
    "w2": WSquare,
    "flat": Flat,
}

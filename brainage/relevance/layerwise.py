"""Layer-wise relevance propagation with a composite: deep Taylor decomposition and LRP."""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from brainage.relevance.analyzer import Analyzer
from brainage.relevance.canonizers import Canonizer
from brainage.relevance.composites import Composite, get_composite
from brainage.relevance.propagation import forward_with_caches, propagate_chain


class RelevanceAnalyzer(Analyzer):
    """Layer-wise relevance propagation: deep Taylor decomposition and LRP composites.

    Relevance starts at the target's logit (pre-softmax) and is passed down layer by layer;
    the cost is about one forward and one backward pass (see :mod:`brainage.relevance.rules`).

    Parameters
    ----------
    model : keras.Model
    composite : Composite or str
        A :class:`Composite`, or a preset name: ``"dtd"`` (z⁺ hidden, zᴮ input),
        ``"dtd_w2"``, ``"lrp_composite"``, ``"epsilon_plus"``.
    canonizers : sequence of Canonizer, optional
        E.g. ``[MergeBatchNorm()]``: each BatchNormalization is folded into the Dense/Conv
        right before it (``W' = W·γ/σ``, ``b' = (b − μ)γ/σ + β``) so the rule sees the true
        affine map. Without it relevance crosses BatchNormalization unchanged (seed 000 eq. 3.1).
    bn_mode : {"passthrough", "canonize"}, optional
        Alias: ``"canonize"`` is ``canonizers=[MergeBatchNorm()]``, ``"passthrough"`` is none.
    compile, jit_compile : bool
        See :class:`Analyzer`.
    **composite_params
        Passed to the preset (``low``, ``high``, ``epsilon``, ``gamma``).
    """

    def __init__(
        self,
        model,
        composite: Composite | str = "dtd",
        *,
        canonizers: Sequence[Canonizer] | None = None,
        bn_mode: str | None = None,
        compile=True,
        jit_compile=False,
        **composite_params,
    ):
        if isinstance(composite, str):
            composite = get_composite(composite, **composite_params)
        elif composite_params:
            raise TypeError(
                f"parameters {sorted(composite_params)} only apply to preset names, not to a "
                "Composite object"
            )
        self.composite = composite
        self.method = composite.name
        super().__init__(
            model, canonizers=canonizers, bn_mode=bn_mode, compile=compile, jit_compile=jit_compile
        )
        self.rules = composite.assign(self.steps)

    def __repr__(self):
        return f"RelevanceAnalyzer(composite={self.composite!r}, canonizers={list(self.canonizers)!r})"

    def _trace_names(self):
        return [s.name for s in reversed(self.steps)]

    def _graph(self, x, targets):
        acts, caches = forward_with_caches(self.steps, self.rules, x)
        logits = acts[-1]
        chosen, seed, outputs = self._select(logits, targets)
        relevances = [seed[i] * logits for i in range(targets.shape[0])]
        relevances, trace = propagate_chain(self.steps, self.rules, acts, caches, relevances)
        return ops.stack(relevances), outputs, chosen, trace

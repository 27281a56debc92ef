"""Layer-wise relevance propagation with a composite: deep Taylor decomposition and LRP."""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from brainage.relevance.analyzer import Analyzer
from brainage.relevance.canonizers import Canonizer
from brainage.relevance.composites import Composite, get_composite, on_composite
from brainage.relevance.dag_propagation import dag_forward, propagate_dag
from brainage.relevance.heads import Head, chain_for, merge_virtual_layer, region_head, virtual_layer
from brainage.relevance.propagation import forward_with_caches, propagate_chain
from brainage.relevance.registry import register_method


class RelevanceAnalyzer(Analyzer):
    """Layer-wise relevance propagation: deep Taylor decomposition and LRP composites.

    Relevance starts at the target's logit (pre-softmax) and is passed down layer by layer;
    the cost is about one forward and one backward pass (see :mod:`brainage.relevance.rules`).
    Branching graphs (residual, concatenating, U-Nets) are walked node by node
    (:mod:`brainage.relevance.dag_propagation`); per-voxel outputs are explained for a region
    (``explain(x, target=<channel>, output_mask=mask)``).

    A contrast target (``"predicted-vs-mean"``, ``contrast="logodds"``, ...) merges a virtual
    difference layer into the logits layer before its rule is applied
    (:mod:`brainage.relevance.heads`). Conservation identity: with a conservative composite
    (``dtd``, ``dtd_w2``: biases are left out of z⁺, zᴮ and w²) the map sums, layer by layer,
    to the explained value: ``z_c``; ``z_c − z_k``; ``z_c − mean_{k≠c} z_k``; or
    ``log p_c / (1 − p_c)``, except where a unit with relevance has no positive contribution
    (a dead unit; the loss is in the trace). Rules that absorb relevance (LRP-0/ε/γ with
    biases) report it per layer in ``Explanation.sinks``: maps plus sinks always balance.

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
    compile, jit_compile, contrast
        See :class:`Analyzer`.
    **composite_params
        Passed to the preset (``low``, ``high``, ``epsilon``, ``gamma``, ``use_bias``).
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
        contrast=None,
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
            model, canonizers=canonizers, bn_mode=bn_mode, compile=compile, jit_compile=jit_compile,
            contrast=contrast,
        )
        self.rules = composite.assign(self.steps)
        self._chains: dict = {}

    supports_dag = True
    supports_regions = True

    def __repr__(self):
        return f"RelevanceAnalyzer(composite={self.composite!r}, canonizers={list(self.canonizers)!r})"

    def _trace_names(self):
        return self._node_trace_names()

    def _virtual_layer(self, mode):
        """The difference layer merged into the logits layer for ``mode`` (None: none)."""
        return virtual_layer(mode, self.n_classes)

    def _chain(self, mode):
        """``(steps, top)``: the chain with the mode's virtual layer merged into the step at
        index ``top`` (None when there is no virtual layer)."""
        if mode not in self._chains:
            self._chains[mode] = chain_for(self.steps, self._virtual_layer(mode))
        return self._chains[mode]

    def _top(self, logits, classes, others, mode) -> Head:
        """The head whose ``relevance`` starts the propagation (CLRP and SGLRP override it)."""
        return self._select(logits, classes, others, mode)

    def _finish(self, maps):
        """Post-processing of the input relevance (CLRP's clipping); none here."""
        return maps

    def _dag_for(self, mode):
        """The graph with the mode's virtual layer merged into the output node's step."""
        virtual = self._virtual_layer(mode)
        if virtual is None:
            return self.dag
        if ("dag", mode) not in self._chains:
            output_step = self.dag.producer(self.dag.output).step
            merged, _ = merge_virtual_layer([output_step], virtual)
            self._chains[("dag", mode)] = self.dag.with_output_step(merged[0])
        return self._chains[("dag", mode)]

    def _dag_graph(self, x, classes, others, mode):
        dag = self._dag_for(mode)
        tensors, caches = dag_forward(dag, self.rules, x)
        logits = tensors[dag.output]
        if dag is not self.dag:  # the real logits, for the head: the original output step
            node = self.dag.producer(self.dag.output)
            logits = node.step.forward(tensors[node.inputs[0]])
        head = self._top(logits, classes, others, mode)
        return self._dag_result(dag, tensors, caches, head, classes.shape[0])

    def _dag_result(self, dag, tensors, caches, head, n_targets):
        relevances = [head.relevance[i] for i in range(n_targets)]
        relevances, trace, sinks = propagate_dag(dag, self.rules, tensors, caches, relevances,
                                                 self.composite.merge)
        return {"maps": self._finish(ops.stack(relevances)), "outputs": head.outputs,
                "target": head.chosen, "other": head.other, "scale": head.scale,
                "trace": trace, "sinks": sinks}

    def _region_graph(self, x, classes, mask):
        tensors, caches = dag_forward(self.dag, self.rules, x)
        head = region_head(tensors[self.dag.output], classes, mask)
        return self._dag_result(self.dag, tensors, caches, head, classes.shape[0])

    def _graph(self, x, classes, others, mode):
        if self.dag is not None:
            return self._dag_graph(x, classes, others, mode)
        steps, top = self._chain(mode)
        acts, caches = forward_with_caches(steps, self.rules, x)
        logits = acts[-1]
        if top is not None:  # the real logits, for the head: the original layers from ``top``
            logits = acts[top]
            for step in self.steps[top:]:
                logits = step.forward(logits)
        head = self._top(logits, classes, others, mode)
        relevances = [head.relevance[i] for i in range(classes.shape[0])]
        relevances, trace, sinks = propagate_chain(steps, self.rules, acts, caches, relevances)
        return {"maps": self._finish(ops.stack(relevances)), "outputs": head.outputs,
                "target": head.chosen, "other": head.other, "scale": head.scale,
                "trace": trace, "sinks": sinks}


def _preset_factory(preset: str):
    def factory(model, **params) -> RelevanceAnalyzer:
        return RelevanceAnalyzer(model, preset, **params)

    factory.__name__ = factory.__qualname__ = preset
    factory.__doc__ = (f"RelevanceAnalyzer with the {preset!r} composite preset (parameters: "
                       "RelevanceAnalyzer's and the preset function's in composites.py).")
    return factory


def _register_preset(preset: str, order: int | None, replace: bool) -> None:
    register_method(preset, _preset_factory(preset), order=order, replace=replace)


# Every composite preset, registered so far or later (composites.register_composite), is a
# method of its name. Done here: composites.py cannot import RelevanceAnalyzer (a cycle).
on_composite(_register_preset)


@register_method("dtd_seed", order=9)
class SeedDTDAnalyzer(RelevanceAnalyzer):
    """The seed's deep Taylor decomposition exactly (explainer ``dtd_seed``).

    z⁺ on every hidden Dense/Conv layer, zᴮ on ``[0, 1]`` at the input, relevance passed
    unchanged across BatchNormalization (seed 000 eq. 3.1), the plain logit as target. Nothing
    that changes the method can be set; contrastive targets are refused (use ``dtd``).
    """

    def __init__(self, model, *, compile=True, jit_compile=False):
        super().__init__(model, "dtd", canonizers=[], low=0.0, high=1.0, compile=compile,
                         jit_compile=jit_compile)
        self.method = "dtd_seed"

    def _check_target(self, spec):
        if spec.contrast is not None:
            raise ValueError(f"dtd_seed: the seed explains the plain logit; target {spec.tag!r} "
                             "adds a contrast (use explainer dtd for contrastive targets)")

"""The machinery every explanation method shares.

:class:`Analyzer` parses the model into a chain of steps (applying its canonizers),
checks inputs, resolves targets (:mod:`brainage.relevance.targets`), compiles the
method's graph and assembles the :class:`~brainage.relevance.Explanation`. A method
subclasses it and writes ``_graph``: layer-wise relevance in
:mod:`brainage.relevance.layerwise`, gradient methods in
:mod:`brainage.relevance.gradient_methods`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from keras import ops

from brainage.relevance._backend import backend_name, compile_function
from brainage.relevance._dag import Dag, build_dag
from brainage.relevance._graph import Step, build_steps, float_dtype
from brainage.relevance.canonizers import Canonizer, bn_mode_of, resolve_canonizers
from brainage.relevance.explanation import Explanation, explanation_from_result
from brainage.relevance.heads import Head, select_head
from brainage.relevance.targets import TargetSpec, parse_target, target_indices


class Analyzer:
    """Common machinery of every explanation method.

    Parameters
    ----------
    model : keras.Model
        Functional or Sequential model ending in a ``(batch, n_classes)`` logit layer (a final
        softmax is skipped; ``n_classes`` may be 1, a regression). Every method explains single
        chains; methods with ``supports_dag`` (all built-in ones) also explain branching graphs
        (:mod:`brainage.relevance._dag`), those with ``supports_regions`` also per-voxel outputs
        ``(batch, *spatial, channels)`` (see ``output_mask`` in :meth:`explain`). Weights are
        snapshotted now: build a new analyzer after further training.
    canonizers : sequence of Canonizer, optional
        Applied in order to the parsed chain (e.g. ``[MergeBatchNorm()]``).
    bn_mode : {"passthrough", "canonize"}, optional
        Alias for ``canonizers`` (see :func:`~brainage.relevance.canonizers.resolve_canonizers`);
        give one or the other. Neither: passthrough.
    compile : bool
        Compile the explanation (``jax.jit`` / ``tf.function``). False runs eagerly.
    jit_compile : bool
        TensorFlow only: let ``tf.function`` use XLA.
    contrast : None, int or str, optional
        Default contrast of :meth:`explain` (``"mean"``, ``"logodds"``, ``"runnerup"`` or a class
        index, see :mod:`brainage.relevance.targets`) when the target names none.
    """

    method = "analyzer"
    # Methods that walk branching graphs set ``supports_dag``; those that also explain regions
    # of per-voxel outputs (``explain(output_mask=...)``, through ``_region_graph``) set both.
    supports_dag = False
    supports_regions = False

    def __init__(
        self,
        model,
        *,
        canonizers: Sequence[Canonizer] | None = None,
        bn_mode: str | None = None,
        compile=True,
        jit_compile=False,
        contrast=None,
    ):
        backend_name()
        self.model = model
        self.dtype = float_dtype(model)  # inputs and weights: float32, or float64 for a float64 model
        self.canonizers = resolve_canonizers(canonizers, bn_mode)
        output_shape = tuple(model.output_shape)
        self.output_spatial = tuple(output_shape[1:-1])
        self.dag, self.steps = self._parse(model)
        if len(output_shape) != 2 and self.dag is None:
            raise ValueError(
                f"model {model.name!r}: output shape {output_shape} is not (batch, n_classes)"
            )
        self.n_classes = int(output_shape[-1])
        self.input_shape = tuple(model.input_shape[1:])
        self.compile = compile
        self.jit_compile = jit_compile
        self.contrast = parse_target("predicted", contrast, who=self.method).contrast
        self._compiled_graphs: dict = {}

    def _parse(self, model) -> tuple[Dag | None, list[Step]]:
        """``(dag, steps)``: the model as a :class:`Dag` when the chain code cannot explain it
        (branches, graph-only layers, a per-voxel output), else ``(None, chain)``, unchanged."""
        if self.supports_dag and len(self.output_spatial) > 0:
            dag = build_dag(model, self.canonizers)
            return dag, dag.steps
        try:
            return None, build_steps(model, self.canonizers)
        except ValueError as error:
            if not self.supports_dag:
                raise ValueError(f"{error} ({self.method} explains chains only)") from error
            dag = build_dag(model, self.canonizers)
            return dag, dag.steps

    @property
    def bn_mode(self) -> str:
        """``"canonize"`` when a :class:`MergeBatchNorm` is applied, else ``"passthrough"``."""
        return bn_mode_of(self.canonizers)

    # ------------------------------------------------------------------ public
    def explain(self, x, target="predicted", labels=None, contrast=None, output_mask=None) -> Explanation:
        """Explain a batch.

        Parameters
        ----------
        x : array-like, shape (batch, *model input shape)
        target : "predicted", "true", int or "all", optionally with a contrast suffix
            Which class to explain: the arg-max class, the label (needs ``labels``), a fixed
            class, or every class in turn (maps get a leading class axis). A suffix
            ``"-vs-<k>"``, ``"-vs-runnerup"``, ``"-vs-mean"`` or ``"-logodds"`` explains the
            class's margin instead of its logit (:mod:`brainage.relevance.targets`).
        labels : array-like of int, shape (batch,), optional
            True classes, for ``target="true"``.
        contrast : None, int or str, optional
            The contrast as its own argument (instead of a suffix); default: the analyzer's.
        output_mask : array-like of bool, optional
            For a per-voxel output ``(batch, *spatial, channels)`` (a segmentation network):
            which output voxels to explain, shaped ``spatial`` (every input) or
            ``(batch, *spatial)``. The explained value is the sum of channel ``target``'s logits
            over the mask, ``Σ_{v∈mask} z_{v,c}`` (seed 003); ``target`` is then a channel index
            or ``"all"`` (each channel in turn), without contrast. Required for such outputs,
            refused for ``(batch, n_classes)`` outputs. Layer-wise methods only.
        """
        if output_mask is not None or self.output_spatial:
            return self._explain_region(x, target, contrast, output_mask)
        x, spec, classes, others = self._prepare(x, target, labels, contrast)
        return self._assemble(self._run(x, classes, others, spec.mode), spec)

    def _prepare(self, x, target, labels, contrast):
        """Checked input, target spec and class arrays of one :meth:`explain` call."""
        x = self._check_input(x)
        spec = parse_target(target, contrast, self.contrast, who=self.method)
        classes, others = target_indices(spec, labels, x.shape[0], self.n_classes, self.method)
        self._check_target(spec)
        return x, spec, classes, others

    def _explain_region(self, x, target, contrast, output_mask) -> Explanation:
        """:meth:`explain` for a region of a per-voxel output (see ``output_mask``)."""
        x, spec, classes, mask = self._region_inputs(x, target, contrast, output_mask)
        result = self._compiled_region()(x, classes, mask)
        return self._assemble({k: ops.convert_to_numpy(v) for k, v in result.items()}, spec)

    def _region_inputs(self, x, target, contrast, output_mask):
        """Checked ``(x, spec, classes, mask)`` of a region explanation (mask: float, per input)."""
        who = self.method
        if not self.supports_regions:
            raise ValueError(f"{who}: output_mask (regions of per-voxel outputs) is not supported: "
                             "CLRP and SGLRP start their dual from the class logits; every other "
                             "method (dtd, lrp..., the gradient methods, gradcam, deeplift, "
                             "dtd_reference) explains regions")
        if not self.output_spatial:
            raise ValueError(f"{who}: output_mask needs a per-voxel output; model {self.model.name!r} "
                             f"outputs (batch, {self.n_classes})")
        if output_mask is None:
            raise ValueError(f"{who}: model {self.model.name!r} has a per-voxel output (batch, "
                             f"{', '.join(map(str, self.output_spatial))}, {self.n_classes}): pass "
                             "output_mask (the output voxels to explain) and target=<channel>")
        x = self._check_input(x)
        spec = parse_target(target, contrast, who=who)
        if spec.contrast is not None or spec.base in ("predicted", "true"):
            raise ValueError(f"{who}: with output_mask, target is a channel index or 'all', without "
                             f"contrast; got {spec.tag!r}")
        classes, _ = target_indices(spec, None, x.shape[0], self.n_classes, who)
        mask = np.asarray(output_mask)
        if mask.dtype != bool or mask.shape not in (self.output_spatial, (x.shape[0], *self.output_spatial)):
            raise ValueError(f"{who}: output_mask must be boolean, shaped {self.output_spatial} or "
                             f"{(x.shape[0], *self.output_spatial)}; got {mask.dtype} {mask.shape}")
        mask = np.broadcast_to(mask, (x.shape[0], *self.output_spatial)).astype(x.dtype)
        return x, spec, classes, mask

    def _compiled_region(self):
        """The compiled :meth:`_region_graph`."""
        if "region" not in self._compiled_graphs:
            self._compiled_graphs["region"] = compile_function(
                self._region_graph, self.compile, self.jit_compile)
        return self._compiled_graphs["region"]

    def _region_graph(self, x, classes, mask):  # pragma: no cover - interface
        """Compiled core of :meth:`_explain_region`: the dict of :meth:`_graph`."""
        raise NotImplementedError

    def _assemble(self, result: dict, spec: TargetSpec) -> Explanation:
        return explanation_from_result(
            result, self._trace_names(), self.method, all_classes=spec.all_classes,
            target_mode=spec.tag,
        )

    def __repr__(self):
        return f"{type(self).__name__}(method={self.method!r}, canonizers={list(self.canonizers)!r})"

    # ---------------------------------------------------------------- internals
    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        expected = self.input_shape
        shown = "(batch, " + ", ".join("?" if d is None else str(d) for d in expected) + ")"
        if x.ndim != len(expected) + 1 or any(
            d is not None and d != s for d, s in zip(expected, x.shape[1:])
        ):
            hint = "; add a batch axis for one input: x[None]" if x.shape == expected else ""
            raise ValueError(
                f"{self.method}: input of shape {x.shape} does not match the model input "
                f"{shown}{hint}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"{self.method}: empty batch")
        return x

    def _forward(self, x) -> list:
        acts = [x]
        for step in self.steps:
            acts.append(step.forward(acts[-1]))
        return acts

    def _check_target(self, spec: TargetSpec) -> None:
        """Refuse target modes the method cannot explain (subclasses); every mode by default."""

    def _select(self, logits, classes, others, mode) -> Head:
        """The explained quantity inside the graph, see :func:`~brainage.relevance.heads.select_head`."""
        return select_head(logits, classes, others, mode)

    def _compiled(self, mode):
        """The compiled ``_graph`` for one contrast mode (the mode changes the graph's shape)."""
        if mode not in self._compiled_graphs:
            graph = functools.partial(self._graph, mode=mode)
            self._compiled_graphs[mode] = compile_function(graph, self.compile, self.jit_compile)
        return self._compiled_graphs[mode]

    def _graph(self, x, classes, others, mode):  # pragma: no cover - interface
        """Compiled core: a dict with ``maps`` (T, B, ...), ``outputs``, ``target`` (T, B) and
        optionally ``other``, ``scale`` (T, B), ``trace``, ``sinks`` (layers, T, B)."""
        raise NotImplementedError

    def _run(self, x, classes, others, mode) -> dict:
        result = self._compiled(mode)(x, classes, others)
        return {k: ops.convert_to_numpy(v) for k, v in result.items()}

    def _trace_names(self) -> list[str]:
        return []

    def _node_trace_names(self) -> list[str]:
        """Layer names, output to input; a layer called n times (shared weights) in a graph has
        n rows, the later calls named ``<layer>@2``, ``<layer>@3``, ... (in forward order)."""
        names, calls = [], {}
        for step in self.steps:
            calls[step.name] = calls.get(step.name, 0) + 1
            names.append(step.name if calls[step.name] == 1 else f"{step.name}@{calls[step.name]}")
        return names[::-1]

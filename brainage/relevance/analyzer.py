"""The machinery every explanation method shares.

:class:`Analyzer` parses the model into a chain of steps (applying its canonizers),
checks inputs, resolves targets (:mod:`brainage.relevance.targets`), compiles the
method's graph and assembles the :class:`~brainage.relevance.Explanation`. A method
subclasses it and writes ``_graph``: layer-wise relevance in
:mod:`brainage.relevance.layerwise`, gradient methods in
:mod:`brainage.relevance.gradient_methods`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from keras import ops

from brainage.relevance._backend import backend_name, compile_function
from brainage.relevance._graph import Step, build_steps
from brainage.relevance.canonizers import Canonizer, bn_mode_of, resolve_canonizers
from brainage.relevance.explanation import Explanation, explanation_from_result
from brainage.relevance.targets import is_all_classes, select_targets, target_indices


class Analyzer:
    """Common machinery of every explanation method.

    Parameters
    ----------
    model : keras.Model
        Functional or Sequential single chain ending in a ``(batch, n_classes)`` logit
        layer (a final softmax is skipped). Weights are snapshotted now: build a new
        analyzer after further training.
    canonizers : sequence of Canonizer, optional
        Applied in order to the parsed chain (e.g. ``[MergeBatchNorm()]``).
    bn_mode : {"passthrough", "canonize"}, optional
        Alias for ``canonizers`` (see :func:`~brainage.relevance.canonizers.resolve_canonizers`);
        give one or the other. Neither: passthrough.
    compile : bool
        Compile the explanation (``jax.jit`` / ``tf.function``). False runs eagerly.
    jit_compile : bool
        TensorFlow only: let ``tf.function`` use XLA.
    """

    method = "analyzer"

    def __init__(
        self,
        model,
        *,
        canonizers: Sequence[Canonizer] | None = None,
        bn_mode: str | None = None,
        compile=True,
        jit_compile=False,
    ):
        backend_name()
        self.model = model
        self.canonizers = resolve_canonizers(canonizers, bn_mode)
        self.steps: list[Step] = build_steps(model, self.canonizers)
        output_shape = tuple(model.output_shape)
        if len(output_shape) != 2:
            raise ValueError(
                f"model {model.name!r}: output shape {output_shape} is not (batch, n_classes)"
            )
        self.n_classes = int(output_shape[-1])
        self.input_shape = tuple(model.input_shape[1:])
        self.compile = compile
        self.jit_compile = jit_compile
        self._graph_fn = compile_function(self._graph, compile, jit_compile)

    @property
    def bn_mode(self) -> str:
        """``"canonize"`` when a :class:`MergeBatchNorm` is applied, else ``"passthrough"``."""
        return bn_mode_of(self.canonizers)

    # ------------------------------------------------------------------ public
    def explain(self, x, target="predicted", labels=None) -> Explanation:
        """Explain a batch.

        Parameters
        ----------
        x : array-like, shape (batch, *model input shape)
        target : "predicted", "true", int or "all"
            Which logit to explain: the arg-max class, the label (needs ``labels``), a fixed
            class, or every class in turn (maps get a leading class axis).
        labels : array-like of int, shape (batch,), optional
            True classes, for ``target="true"``.
        """
        x = self._check_input(x)
        targets = target_indices(target, labels, x.shape[0], self.n_classes, self.method)
        result = self._run(x, targets)
        return explanation_from_result(
            result, self._trace_names(), self.method, all_classes=is_all_classes(target)
        )

    def __repr__(self):
        return f"{type(self).__name__}(method={self.method!r}, canonizers={list(self.canonizers)!r})"

    # ---------------------------------------------------------------- internals
    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
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

    def _select(self, logits, targets):
        """``(chosen, seed, outputs)`` inside the graph, see :func:`select_targets`."""
        return select_targets(logits, targets, self.n_classes)

    def _graph(self, x, targets):  # pragma: no cover - interface
        """Compiled core: returns (maps (T, B, ...), outputs (T, B), target (T, B)[, trace])."""
        raise NotImplementedError

    def _run(self, x, targets) -> dict:
        result = self._graph_fn(x, targets)
        names = ["maps", "outputs", "target", "trace"]
        return {k: ops.convert_to_numpy(v) for k, v in zip(names, result)}

    def _trace_names(self) -> list[str]:
        return []

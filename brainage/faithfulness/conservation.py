"""Conservation and completeness: does a map sum to what its method says it explains?

``conservation_error = |ΣR − E| / |E|`` per map, where ``E`` is the explained quantity of the
method's own identity:

* layer-wise relevance (DTD, LRP composites, their contrastive variants): ``E`` is the explained
  value the engine reports (``Explanation.outputs``: the logit ``z_c``, or ``z_c − z_k``, the
  log-odds … for a contrast), so the error is the engine's ``rel_error``;
* reference-based methods (completeness): ``E = f(x) − f(x_ref)``. Methods that report the value
  at their reference (``Explanation.extras["reference_outputs"]``) already explain ``E`` in
  ``outputs``; integrated gradients reports ``f(x)``, so ``f(x_ref)`` is computed here — the same
  target mode at the method's baseline, by a plain gradient analyzer (whose outputs are the
  explained value, contrasts included);
* methods without an identity (gradient, gradient × input, guided backprop, Grad-CAM, SmoothGrad,
  the random floor): NaN — there is nothing their maps should sum to, and a number would be fake.

An ensemble's analyzer (:class:`~brainage.ensemble.one_model.EnsembleAnalyzer`) obeys its
members' identity: its mean map sums to the mean of the members' explained values, and a reference
method's ``E`` is the mean of the members' ``f(x) − f(x_ref)`` (each member at its own reference).
"""
from __future__ import annotations

import numpy as np

from brainage.ensemble.one_model import EnsembleAnalyzer

OUTPUT = "output"  # ΣR equals the explained value
REFERENCE = "reference"  # ΣR equals the explained value minus its value at a reference input


def member_analyzers(analyzer) -> tuple:
    """The analyzers whose maps ``analyzer``'s are: an ensemble's members, else itself alone."""
    return analyzer.members if isinstance(analyzer, EnsembleAnalyzer) else (analyzer,)


def identity_of(analyzer) -> str | None:
    """Which conservation identity ``analyzer``'s maps obey: :data:`OUTPUT`, :data:`REFERENCE` or
    None (no identity); an ensemble's, its members' (one method)."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import IntegratedGradientsAnalyzer, RelevanceAnalyzer
    from brainage.relevance.reference import ReferenceAnalyzer

    analyzer = member_analyzers(analyzer)[0]
    if isinstance(analyzer, (IntegratedGradientsAnalyzer, ReferenceAnalyzer)):
        return REFERENCE
    if isinstance(analyzer, RelevanceAnalyzer):
        return OUTPUT
    return None


def computed_reference(analyzer, identity: str | None, target: str,
                       classes: np.ndarray) -> np.ndarray | None:
    """The explained value at the reference for each subject, where the method leaves it to be
    computed here (integrated gradients reports ``f(x)``; :func:`reference_outputs`), else None.
    An ensemble's is the mean of its members' (each at its own baseline)."""
    members = member_analyzers(analyzer)
    if identity != REFERENCE or not hasattr(members[0], "baseline"):
        return None
    return np.mean([reference_outputs(m, target, classes) for m in members], axis=0)


def reference_outputs(analyzer, target: str, classes: np.ndarray) -> np.ndarray:
    """The explained value at ``analyzer.baseline`` for each subject's class, ``(n,)``.

    One input per distinct class (the reference is the same for every subject), explained in
    ``target`` (a fixed-class target, classes as labels) by a gradient analyzer of the same model.
    """
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import GradientAnalyzer

    shape = analyzer.input_shape
    distinct, back = np.unique(np.asarray(classes), return_inverse=True)
    x_ref = np.broadcast_to(np.asarray(analyzer.baseline, np.float32), shape)
    batch = np.repeat(x_ref[None], len(distinct), axis=0)
    values = GradientAnalyzer(analyzer.model).explain(batch, target=target, labels=distinct).outputs
    return np.asarray(values, dtype=np.float64)[back]


def conservation_errors(identity: str | None, explanation, reference: np.ndarray | None = None
                        ) -> np.ndarray:
    """``|ΣR − E| / |E|`` per map of ``explanation`` (NaN without an identity or where ``E = 0``).

    Parameters
    ----------
    identity : str or None
        From :func:`identity_of`.
    explanation : Explanation
        A batch explained by the analyzer.
    reference : ndarray, optional
        For :data:`REFERENCE` methods that do not report it: the explained value at the reference
        for each map (:func:`reference_outputs`).
    """
    n = len(np.asarray(explanation.outputs))
    if identity is None:
        return np.full(n, np.nan)
    if identity == OUTPUT or "reference_outputs" in explanation.extras:
        return np.asarray(explanation.rel_error, dtype=np.float64)
    explained = np.asarray(explanation.outputs, np.float64) - np.asarray(reference, np.float64)
    total = np.asarray(explanation.relevance_sum, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(explained != 0, np.abs(total - explained) / np.abs(explained), np.nan)

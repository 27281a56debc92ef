"""Our composites expressed in Zennit: the rule of each Keras layer becomes a Zennit hook.

The rules are taken from our own analyzer (``analyzer.rules``, layer name → rule), so both sides
apply the same rule to the same layer by construction, with the same parameters:

=================  ==============================================================================
ours               Zennit 0.5
=================  ==============================================================================
``ZPlus``          ``ZPlus(zero_params="bias")`` — our z⁺ leaves the bias out (seed eq. 2.11);
                   Zennit's adds ``b⁺`` to the denominator unless told not to
``ZBox(l, h)``     ``ZBox(l, h)`` — the biases cancel in Zennit's denominator, as in ours
``Epsilon(ε)``     ``Epsilon(ε)`` (same ``ε·sign(z)``, ``+ε`` at 0); ``LRP0`` is ``Epsilon`` with
                   the stabiliser as ε
``Gamma(γ)``       :func:`classic_gamma`: one BasicHook with Zennit's own ``GammaMod`` — Montavon
                   2019's ``a(w + γw⁺)``, bias ``b + γb⁺``, which is ours. Zennit 0.5's ``Gamma``
                   is the generalised rule (Andéol 2021), which treats outputs with ``z < 0``
                   differently; they receive relevance here because BatchNormalization sits
                   between ``conv_b`` and its ReLU
BatchNorm          ``Pass()`` (Zennit's ``layer_map_base``): ``R_i = R_j``, our pass-through
ReLU               ``Pass()``
AveragePooling     ``Norm()``: LRP-0 on the pooling, as ours
=================  ==============================================================================

Zennit adds a stabiliser ``±s`` to every denominator; we drop outputs with ``|z| ≤ 10⁻³⁰``
instead. :data:`STABILIZER` is small enough not to move a float32 denominator.
"""
from __future__ import annotations

from brainage.errors import BrainageError

# Below float32's resolution of any denominator that carries relevance, so the stabiliser only
# matters where a denominator is exactly 0 (where ours drops the relevance instead).
STABILIZER = 1e-12


def classic_gamma(gamma: float, stabilizer: float = STABILIZER):
    """LRP-γ as Montavon et al. 2019 define it (and as ``brainage.relevance.Gamma`` does):
    ``R_i = Σ_j a_i(w_ij + γw⁺_ij) / (Σ_i a_i(w_ij + γw⁺_ij) + b_j + γb⁺_j) · R_j``."""
    from zennit.core import BasicHook, Stabilizer
    from zennit.rules import GammaMod

    stabilize = Stabilizer.ensure(stabilizer)
    return BasicHook(
        input_modifiers=[lambda input: input],
        param_modifiers=[GammaMod(gamma, min=0.0)],
        output_modifiers=[lambda output: output],
        gradient_mapper=lambda out_grad, outputs: [out_grad / stabilize(outputs[0])],
        reducer=lambda inputs, gradients: inputs[0] * gradients[0],
    )


def _scalar_bound(value, layer: str) -> float:
    import numpy as np

    if np.ndim(value) != 0:
        raise BrainageError(f"bench: layer {layer!r}: per-voxel zB bounds have no Zennit translation here")
    return float(value)


def zennit_rule(rule, layer: str, stabilizer: float = STABILIZER):
    """The Zennit hook doing what our ``rule`` does on ``layer``.

    Raises
    ------
    BrainageError
        For a rule without a translation (the peer comparison covers ``dtd`` and ``lrp_composite``).
    """
    from zennit import rules as zrules

    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import Epsilon, Gamma, ZBox, ZPlus

    if isinstance(rule, ZPlus):
        return zrules.ZPlus(stabilizer=stabilizer, zero_params="bias")
    if isinstance(rule, ZBox):
        low, high = _scalar_bound(rule.low, layer), _scalar_bound(rule.high, layer)
        return zrules.ZBox(low, high, stabilizer=stabilizer)
    if isinstance(rule, Epsilon):
        return zrules.Epsilon(epsilon=float(rule.epsilon) or stabilizer)
    if isinstance(rule, Gamma):
        return classic_gamma(float(rule.gamma), stabilizer)
    raise BrainageError(f"bench: layer {layer!r}: no Zennit translation of rule {rule!r}")


def zennit_composite(rules: dict, stabilizer: float = STABILIZER):
    """A Zennit composite applying ``rules`` (layer name → our rule) to the modules of those names,
    with Zennit's base layer map (ReLU and BatchNorm pass, average pooling normalised)."""
    from zennit.composites import NameLayerMapComposite, layer_map_base

    name_map = [((name,), zennit_rule(rule, name, stabilizer)) for name, rule in rules.items()]
    return NameLayerMapComposite(name_map=name_map, layer_map=layer_map_base(stabilizer))

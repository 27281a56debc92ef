"""Relevance absorbed by biases and ε (sinks) after BatchNorm canonisation: the books balance
layer by layer, the sinks match a float64 reference, and bias-free rules conserve."""

import numpy as np
import pytest

from brainage.relevance import LRP0, Composite, Epsilon, Gamma, ZBox, make_analyzer

from . import dense_chain
from .nets import float64_twin, randomize_batch_norm, small_chain


@pytest.fixture(scope="module")
def shifted_net():
    """Canonisation folds BatchNorm shifts of ±1.5–3 into conv_b's bias: a large bias that
    LRP-0/ε/γ hand relevance to (the dense layers get biases of ±0.5 too)."""
    rng = np.random.default_rng(41)
    x = rng.uniform(0.0, 1.0, (4, 9, 8, 1)).astype("float32")
    model = randomize_batch_norm(small_chain(seed=8), rng, x)
    bn = model.get_layer("bn")
    shift = rng.uniform(1.5, 3.0, bn.beta.shape[0]) * np.array([1.0, -1.0, 1.0, -0.5])
    bn.beta.assign(shift.astype("float32"))
    for name in ("dense1", "logits"):
        bias = model.get_layer(name).bias
        bias.assign(rng.uniform(-0.5, 0.5, bias.shape).astype("float32"))
    return float64_twin(model), x.astype(np.float64)  # the same weights, explained in float64


COMPOSITES = {
    "lrp_composite": {},
    "epsilon_plus": {},
    "all_gamma": {"composite": Composite([("linear", Gamma(0.5))], first=ZBox(0.0, 1.0), name="all_gamma")},
    "all_lrp0": {"composite": Composite([("linear", LRP0())], first=ZBox(0.0, 1.0), name="all_lrp0")},
}


def _analyzer(model, name, **params):
    spec = COMPOSITES[name]
    if "composite" in spec:
        from brainage.relevance import RelevanceAnalyzer

        return RelevanceAnalyzer(model, spec["composite"], bn_mode="canonize", compile=False)
    return make_analyzer(model, name, bn_mode="canonize", compile=False, **params)


@pytest.mark.parametrize("target", ["predicted", "all", "predicted-vs-mean", "predicted-logodds"])
@pytest.mark.parametrize("name", list(COMPOSITES))
def test_maps_plus_sinks_equal_the_output(shifted_net, name, target):
    """Σ maps + Σ sinks = the explained value, relative 1e-5 (for "all": the non-predicted classes
    have small logits whose LRP-0 relevance is large, so there the tolerance is 1e-5 of the
    largest logit)."""
    model, x = shifted_net
    explanation = _analyzer(model, name).explain(x, target=target)
    absorbed = sum(explanation.sinks.values())
    assert np.abs(absorbed).max() > 1e-2 * np.abs(explanation.outputs).max()  # the biases do absorb
    np.testing.assert_allclose(explanation.relevance_sum + absorbed, explanation.outputs, rtol=1e-5,
                               atol=1e-5 * np.abs(explanation.outputs).max())
    if target != "all":
        assert np.all(explanation.books_rel_error < 1e-5), explanation.books_rel_error
        for layer, err in explanation.balance_rel_error().items():
            assert np.all(err < 1e-5), (layer, err)


@pytest.mark.parametrize("name", list(COMPOSITES))
def test_sinks_match_the_float64_reference(shifted_net, name):
    """Per layer, the engine's sink (computed on the output side) equals ΣR_out − ΣR_in of the
    float64 dense-matrix propagation."""
    model, x = shifted_net
    analyzer = _analyzer(model, name)
    explanation = analyzer.explain(x)
    ops = dense_chain.chain_ops(model, canonize=True)
    rules = dense_chain.reference_rules(analyzer)
    for i, c in enumerate(explanation.target):
        xi = x[i].reshape(-1)
        z = dense_chain.forward(ops, xi)[0][-1]
        _, _, top = dense_chain.contrast_top(z, int(c))
        _, sums = dense_chain.lrp(ops, xi, top, rules)
        above = z[c]
        for op in reversed(ops):
            expected = above - sums[op["name"]]
            np.testing.assert_allclose(explanation.sinks[op["name"]][i], expected, rtol=1e-4,
                                       atol=1e-5 * abs(z[c]), err_msg=op["name"])
            above = sums[op["name"]]


@pytest.mark.parametrize("name", ["lrp_composite", "epsilon_plus"])
def test_bias_free_rules_conserve_after_canonisation(shifted_net, name):
    """use_bias=False leaves the folded shift out of the denominators: with ε → 0 every layer
    conserves (and the maps still match the float64 reference). Bias-free LRP-0 divides by
    sums with cancellation, so float32 conserves to 1e-5 of the map's mass Σ|R| (not of ΣR)."""
    model, x = shifted_net
    analyzer = make_analyzer(model, name, bn_mode="canonize", use_bias=False, epsilon=1e-9, compile=False)
    assert all(not getattr(rule, "use_bias", False) for rule in analyzer.rules.values() if isinstance(rule, (Epsilon, Gamma)))
    explanation = analyzer.explain(x)
    with_bias = make_analyzer(model, name, bn_mode="canonize", epsilon=1e-9, compile=False).explain(x)
    assert np.nanmax(with_bias.rel_error) > 1e-2  # the folded shifts absorb relevance ...
    mass = np.abs(explanation.maps).reshape(len(x), -1).sum(1)
    for layer, total in explanation.trace.items():  # ... unless left out
        assert np.all(np.abs(total - explanation.outputs) < 1e-5 * mass), layer
    assert np.all(np.abs(explanation.relevance_sum - explanation.outputs) < 1e-5 * mass)
    assert np.median(explanation.rel_error) < 1e-5
    ops = dense_chain.chain_ops(model, canonize=True)
    rules = dense_chain.reference_rules(analyzer)
    for i, c in enumerate(explanation.target):
        xi = x[i].reshape(-1)
        z = dense_chain.forward(ops, xi)[0][-1]
        expected, _ = dense_chain.lrp(ops, xi, dense_chain.contrast_top(z, int(c))[2], rules)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(explanation.maps[i].reshape(-1), expected, rtol=1e-4, atol=1e-5 * scale)

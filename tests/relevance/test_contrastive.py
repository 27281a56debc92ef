"""CLRP and SGLRP as published, against two explicit float64 backward passes, and their
zero-sum identity layer by layer."""

import keras
import numpy as np
import pytest

from brainage.relevance import CLRPAnalyzer, SGLRPAnalyzer, make_analyzer

from . import dense_chain
from .nets import float64_twin, randomize_batch_norm, small_chain, trained_small_chain


# float64 twins (the same weights): the float64 references measure the rules, not float32 round-off.
@pytest.fixture(scope="module")
def random_net():
    rng = np.random.default_rng(21)
    x = rng.uniform(0.0, 1.0, (3, 9, 8, 1)).astype("float32")
    return float64_twin(randomize_batch_norm(small_chain(seed=8), rng, x)), x.astype(np.float64)


@pytest.fixture(scope="module")
def trained_net():
    model, x, _ = trained_small_chain(np.random.default_rng(12))
    return float64_twin(model), x[:4].astype(np.float64)


def _top_units_alive(model, x, classes, negated):
    """Per input: every top unit that receives relevance has a positive contribution Σ a w⁺ > 0
    (nothing leaks at the top): all logits, or class c and its negation for CLRP's negated dual."""
    ops = dense_chain.chain_ops(model)
    hidden = np.stack([dense_chain.forward(ops, xi.reshape(-1))[0][-2] for xi in x])
    w = ops[-1]["w"]
    if not negated:
        return (hidden @ np.maximum(w, 0.0) > 0).all(axis=1)
    w = w[:, classes].T
    return ((hidden * np.maximum(w, 0.0)).sum(1) > 0) & ((hidden * np.maximum(-w, 0.0)).sum(1) > 0)


def _reference(model, analyzer, x, build):
    """``build(ops, x_i, rules)`` for every input, on the float64 chain."""
    ops = dense_chain.chain_ops(model, canonize=analyzer.bn_mode == "canonize")
    rules = dense_chain.reference_rules(analyzer)
    return np.stack([build(ops, xi.reshape(-1), rules) for xi in x])


@pytest.mark.slow
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("dual", ["others", "negated"])
@pytest.mark.parametrize(("net", "bn_mode"), [("random_net", "canonize"), ("trained_net", "passthrough")])
def test_clrp_matches_two_explicit_backward_passes(net, bn_mode, dual, clip, request):
    model, x = request.getfixturevalue(net)
    analyzer = make_analyzer(model, "clrp", dual=dual, clip=clip, bn_mode=bn_mode, compile=False)
    explanation = analyzer.explain(x, target="all")
    for t in range(4):
        expected = _reference(model, analyzer, x, lambda o, xi, r: dense_chain.clrp(o, xi, r, t, dual, clip))
        scale = np.abs(expected).max()
        np.testing.assert_allclose(explanation.maps[t].reshape(len(x), -1), expected, rtol=1e-5, atol=1e-5 * scale)
    if clip:
        assert explanation.maps.min() >= 0.0


@pytest.mark.parametrize(("net", "bn_mode"), [("random_net", "canonize"), ("trained_net", "passthrough")])
def test_sglrp_matches_two_explicit_backward_passes(net, bn_mode, request):
    model, x = request.getfixturevalue(net)
    analyzer = make_analyzer(model, "sglrp", bn_mode=bn_mode, compile=False)
    explanation = analyzer.explain(x, target="all")
    for t in range(4):
        expected = _reference(model, analyzer, x, lambda o, xi, r: dense_chain.sglrp(o, xi, r, t))
        scale = np.abs(expected).max()
        np.testing.assert_allclose(explanation.maps[t].reshape(len(x), -1), expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("method, params", [("clrp", {"clip": False}), ("clrp", {"clip": False, "dual": "negated"}),
                                            ("sglrp", {})])
@pytest.mark.parametrize("net", ["random_net", "trained_net"])
def test_zero_sum_layer_by_layer(net, method, params, request):
    """ΣR = 0 at every layer; each half has the mass ``scale`` (z_c for CLRP, p_c(1 − p_c) for SGLRP)."""
    model, x = request.getfixturevalue(net)
    explanation = make_analyzer(model, method, compile=False, **params).explain(x)
    logits = np.asarray(model(x), dtype=np.float64)
    chosen = logits[np.arange(len(x)), explanation.target]
    p = np.exp(chosen - np.log(np.exp(logits).sum(1)))
    np.testing.assert_allclose(explanation.scale, np.abs(chosen) if method == "clrp" else p * (1 - p), rtol=1e-5)
    np.testing.assert_array_equal(explanation.outputs, 0.0)
    alive = _top_units_alive(model, x, explanation.target, params.get("dual") == "negated")
    assert alive.sum() >= 2
    for layer, err in explanation.trace_rel_error().items():
        assert np.all(err[alive] < 1e-5), (layer, err)
    assert np.all(explanation.rel_error[alive] < 1e-5)
    for err in explanation.balance_rel_error().values():  # a dead logit's relevance is its sink
        assert np.all(err < 1e-5)


def test_clipped_clrp_has_no_identity_but_its_trace_does(trained_net):
    model, x = trained_net
    explanation = CLRPAnalyzer(model, compile=False).explain(x)
    assert explanation.maps.min() >= 0 and (explanation.relevance_sum > 0).all()
    np.testing.assert_allclose(explanation.rel_error, explanation.relevance_sum / explanation.scale, rtol=1e-6)
    unclipped = CLRPAnalyzer(model, clip=False, compile=False).explain(x)
    np.testing.assert_array_equal(explanation.maps, np.maximum(unclipped.maps, 0))
    np.testing.assert_allclose(explanation.trace["conv_a"], unclipped.relevance_sum, rtol=1e-5, atol=1e-6)


def test_contrastive_methods_refuse_contrasts_and_one_output(trained_net):
    model, x = trained_net
    for cls, name in ((CLRPAnalyzer, "clrp"), (SGLRPAnalyzer, "sglrp")):
        with pytest.raises(ValueError, match=f"{name}: the method is contrastive by construction; target 'predicted-vs-mean'"):
            cls(model, compile=False).explain(x, target="predicted-vs-mean")
        with pytest.raises(ValueError, match=f"{name}: .*'predicted-logodds'"):
            cls(model, contrast="logodds")
    regression = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
    for name in ("clrp", "sglrp"):
        with pytest.raises(ValueError, match=rf"{name}: .* the model has 1 output \(a regression\)"):
            make_analyzer(regression, name)
    with pytest.raises(ValueError, match="dual must be one of"):
        CLRPAnalyzer(model, dual="inverse")

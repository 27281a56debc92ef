"""dtd_z_upper: the z-rule (bias-free LRP-0) on the top layers, z⁺ below, zᴮ at the input — against an
independent float64 chain of dense matrices, conserving the logit layer by layer, class-sensitive
where DTD is not, and registered as a method with its config."""

from pathlib import Path

import keras
import numpy as np
import pytest

from brainage.relevance import (
    COMPOSITES,
    LRP0,
    METHODS,
    RelevanceAnalyzer,
    ZBox,
    ZPlus,
    analyzer_from_config,
    make_analyzer,
)

from . import dense_chain
from .nets import float64_twin, randomize_batch_norm, small_chain, taylor_net, trained_small_chain

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
Z_RULE = ("lrp0", {"use_bias": False})


@pytest.fixture(scope="module")
def random_net():
    """small_chain (conv_a → pool → conv_b → bn → relu → dense1 → logits) with non-zero biases
    (a bias-free rule and LRP-0 with biases must differ) and a BN calibrated on the inputs."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (4, 9, 8, 1)).astype("float32")
    model = small_chain(seed=0)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.uniform(-0.3, 0.3, layer.bias.shape).astype("float32"))
    return randomize_batch_norm(model, rng, x), x


def _hand_rules(upper):
    """The composite written out for small_chain's four layers, output first: z-rule on the top
    ``upper``, z⁺ below, zᴮ on [0, 1] at the input."""
    rules = {}
    for index, name in enumerate(["logits", "dense1", "conv_b"]):
        rules[name] = Z_RULE if index < upper else ("zplus", {})
    rules["conv_a"] = ("zbox", {"low": 0.0, "high": 1.0})
    return rules


@pytest.mark.parametrize("bn_mode", ["passthrough", "canonize"])
@pytest.mark.parametrize("upper", [2, 3])
def test_matches_an_independent_float64_chain_layer_by_layer(random_net, upper, bn_mode):
    model, x = random_net
    model, x = float64_twin(model), x.astype(np.float64)
    explanation = make_analyzer(model, "dtd_z_upper", upper=upper, bn_mode=bn_mode,
                                compile=False).explain(x, target="all")
    ops = dense_chain.chain_ops(model, canonize=bn_mode == "canonize")
    logits = np.asarray(model(x), dtype=np.float64)
    for c in range(logits.shape[1]):
        for i, xi in enumerate(x):
            expected, sums = dense_chain.lrp(ops, xi.reshape(-1), np.eye(4)[c] * logits[i, c],
                                             _hand_rules(upper))
            scale = np.abs(expected).max()
            np.testing.assert_allclose(explanation.maps[c, i].reshape(-1), expected, rtol=1e-7,
                                       atol=1e-9 * scale)
            for layer, total in sums.items():  # the trace, layer by layer, is the hand chain's
                np.testing.assert_allclose(explanation.trace[layer][c, i], total, rtol=1e-7,
                                           atol=1e-9 * scale, err_msg=layer)
                np.testing.assert_allclose(total, logits[i, c], rtol=1e-9)  # conserved: the logit
    assert explanation.negative_share.min() > 0  # signed: not one non-negative pattern


def test_conserves_the_logit_layer_by_layer_in_float32(random_net):
    """Biases absorb nothing: every layer's relevance sums to the logit (engine's diagnostics)."""
    model, x = random_net
    explanation = make_analyzer(model, "dtd_z_upper", compile=False).explain(x, target="all")
    np.testing.assert_allclose(explanation.outputs, np.asarray(model(x)).T, rtol=1e-5, atol=1e-6)
    assert np.abs(explanation.outputs).min() > 0.05  # each logit is far from zero: relative errors mean something
    for layer, err in explanation.trace_rel_error().items():
        assert np.all(err < 1e-5), (layer, err)
    assert explanation.max_rel_error < 1e-5
    for layer, sink in explanation.sinks.items():  # no dead unit here: nothing absorbed
        assert np.all(np.abs(sink) < 1e-5 * np.abs(explanation.outputs)), layer
    assert np.all(explanation.books_rel_error < 1e-5)


def test_assigns_the_z_rule_to_the_top_layers():
    model = taylor_net((20, 21, 19, 1))  # block{1,2}_conv_{a,b}, dense1, logits
    names = ["logits", "dense1", "block2_conv_b", "block2_conv_a", "block1_conv_b", "block1_conv_a"]
    for upper in (0, 1, 2, 4, 6, 100):
        rules = make_analyzer(model, "dtd_z_upper", upper=upper, compile=False).rules
        assert [rules[n] for n in names[:-1]] == [LRP0(use_bias=False)] * min(upper, 5) + \
            [ZPlus()] * (5 - min(upper, 5)), upper
        assert rules["block1_conv_a"] == ZBox(0.0, 1.0)  # the input layer keeps zᴮ
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="dtd_z_upper: upper must be a whole number"):
            make_analyzer(model, "dtd_z_upper", upper=bad)


def test_upper_zero_is_dtd(random_net):
    model, x = random_net
    zero = make_analyzer(model, "dtd_z_upper", upper=0, compile=False).explain(x, target="all")
    dtd = make_analyzer(model, "dtd", compile=False).explain(x, target="all")
    np.testing.assert_array_equal(zero.maps, dtd.maps)


def _abs_correlations(first, second):
    """|Pearson r| between ``first[i]`` and ``second[i]``, per input."""
    a, b = first.reshape(len(first), -1), second.reshape(len(second), -1)
    return np.abs([np.corrcoef(u, v)[0, 1] for u, v in zip(a, b)])


def test_maps_of_two_classes_differ_where_dtd_gives_one_pattern():
    """Sixt et al. 2020: the z⁺ chain of DTD explains the first and the last class with nearly the
    same map; the signed rule in the two top layers makes them differ."""
    model, x, _ = trained_small_chain(np.random.default_rng(13))
    x = x[:8]
    r = {}
    for method in ("dtd", "dtd_z_upper"):
        maps = make_analyzer(model, method, compile=False).explain(x, target="all").maps
        r[method] = np.nanmean(_abs_correlations(maps[0], maps[3]))
    assert r["dtd"] > 0.85, r  # the collapse this method is for
    assert r["dtd_z_upper"] < 0.5 and r["dtd_z_upper"] < r["dtd"] - 0.4, r


def test_is_a_registered_method_with_a_config_that_composes():
    from hydra import compose, initialize_config_dir

    assert "dtd_z_upper" in METHODS and "dtd_z_upper" in COMPOSITES
    assert list(METHODS).index("dtd_z_upper") > list(METHODS).index("dtd_seed")  # after the built-ins
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("explain", overrides=["explainer=dtd_z_upper", "explainer.dtd_z_upper.compile=false"])
    assert list(cfg.explainer) == ["dtd_z_upper"] and cfg.explainer.dtd_z_upper.upper == 2
    model = keras.Sequential([keras.Input((7, 8, 1)), keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(4, activation="relu", name="dense1"),
                              keras.layers.Dense(3, name="logits")])
    analyzer = analyzer_from_config(model, cfg.explainer.dtd_z_upper)
    assert isinstance(analyzer, RelevanceAnalyzer) and analyzer.method == "dtd_z_upper"
    assert analyzer.rules == {"conv": ZBox(0.0, 1.0), "dense1": LRP0(use_bias=False),
                              "logits": LRP0(use_bias=False)}
    x = np.random.default_rng(0).uniform(0, 1, (2, 7, 8, 1)).astype("float32")
    assert np.isfinite(analyzer.explain(x).maps).all()

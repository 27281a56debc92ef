"""DTD conserves the logit layer by layer and yields positive maps (seed 000, Definitions 1–3)."""

import keras
import numpy as np
import pytest

from brainage.relevance import RelevanceAnalyzer, make_analyzer

from .nets import gm_volume, positive_logit_bias, randomize_batch_norm, taylor_net

SHAPE = (22, 23, 21, 1)


def _assert_conserved_layer_by_layer(explanation, tol=1e-5):
    assert (explanation.outputs > 0).all()
    for layer, err in explanation.trace_rel_error().items():
        assert np.all(err < tol), f"{layer}: relative leak {err} ≥ {tol}"
    assert explanation.max_rel_error < tol


@pytest.fixture
def random_net(rng):
    x = gm_volume(rng, SHAPE, batch=3)
    model = randomize_batch_norm(taylor_net(SHAPE), rng, x)
    return positive_logit_bias(model, x), x


@pytest.fixture
def trained_net(rng):
    model = taylor_net(SHAPE, seed=1)
    x = gm_volume(rng, SHAPE, batch=12)
    y = rng.integers(0, 3, 12)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    return positive_logit_bias(model, x[:3]), x[:3]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["dtd", "dtd_w2"])
@pytest.mark.parametrize("bn_mode", ["passthrough", "canonize"])
@pytest.mark.parametrize("net", ["random_net", "trained_net"])
def test_dtd_conserves_every_layer_and_is_positive(net, bn_mode, preset, request):
    model, x = request.getfixturevalue(net)
    explanation = make_analyzer(model, preset, bn_mode=bn_mode).explain(x)
    _assert_conserved_layer_by_layer(explanation)
    assert explanation.maps.min() >= 0.0
    assert (explanation.negative_share == 0).all()
    # The trace names every layer, output first.
    assert list(explanation.trace)[0] == "logits"
    assert list(explanation.trace)[-1] == "block1_conv_a"


@pytest.mark.slow
def test_dtd_all_classes_conserved(random_net):
    """Every class with a positive contribution Σ a w⁺ at the logits conserves exactly;
    a class positive only through its bias has nothing to pass down (trace shows 0)."""
    model, x = random_net
    explanation = RelevanceAnalyzer(model, "dtd").explain(x, target="all")
    assert explanation.maps.shape == (3, *x.shape)
    assert explanation.target.tolist() == [[0] * 3, [1] * 3, [2] * 3]
    hidden = np.asarray(keras.Model(model.inputs[0], model.get_layer("dense1").output)(x))
    positive_part = hidden @ np.maximum(model.get_layer("logits").get_weights()[0], 0)  # (batch, class)
    alive = positive_part.T > 0
    assert alive.any()
    for layer, err in explanation.trace_rel_error().items():
        assert np.all(err[alive] < 1e-5), f"{layer}: relative leak {err}"
        np.testing.assert_array_equal(explanation.trace[layer][~alive], 0.0)
    assert explanation.maps.min() >= 0.0


@pytest.mark.slow
def test_dtd_target_true_and_int(random_net):
    model, x = random_net
    analyzer = RelevanceAnalyzer(model, "dtd")
    labels = np.array([2, 0, 1])
    by_label = analyzer.explain(x, target="true", labels=labels)
    assert by_label.target.tolist() == labels.tolist()
    every = analyzer.explain(x, target="all")
    for i, c in enumerate(labels):
        np.testing.assert_allclose(by_label.maps[i], every.maps[c, i], rtol=1e-6, atol=1e-9)
    fixed = analyzer.explain(x, target=1)
    np.testing.assert_allclose(fixed.maps, every.maps[1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fixed.outputs, np.asarray(model(x))[:, 1], rtol=1e-5)


def test_dead_unit_leak_is_reported_not_nan(rng):
    """A ReLU unit alive only through its bias has Σ a w⁺ = 0: its relevance leaks, visibly."""
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="relu", name="first"),
            keras.layers.Dense(4, activation="relu", name="hidden"),
            keras.layers.Dense(2, name="logits"),
        ]
    )
    first = [rng.uniform(0.1, 1.0, (6, 5)).astype("float32"), np.zeros(5, "float32")]
    kernel = rng.uniform(0.1, 1.0, (5, 4)).astype("float32")
    kernel[:, 0] = -kernel[:, 0]  # unit 0: only negative weights ...
    bias = np.array([50.0, 0.0, 0.0, 0.0], "float32")  # ... but alive through its bias
    w_out = rng.uniform(0.1, 1.0, (4, 2)).astype("float32")
    model.get_layer("first").set_weights(first)
    model.get_layer("hidden").set_weights([kernel, bias])
    model.get_layer("logits").set_weights([w_out, np.zeros(2, "float32")])
    x = rng.uniform(0.0, 0.5, (2, 6)).astype("float32")

    explanation = RelevanceAnalyzer(model, "dtd").explain(x)

    assert np.isfinite(explanation.maps).all()
    hidden = np.maximum(np.maximum(x @ first[0], 0) @ kernel + bias, 0)
    assert (hidden[:, 0] > 0).all()
    contributions = hidden * w_out[:, explanation.target].T
    dead_share = contributions[:, 0] / contributions.sum(axis=1)
    # Logits layer conserves; the hidden layer loses exactly the dead unit's relevance.
    np.testing.assert_allclose(explanation.trace["logits"], explanation.outputs, rtol=1e-5)
    np.testing.assert_allclose(explanation.trace["hidden"], explanation.outputs * (1 - dead_share), rtol=1e-5)
    np.testing.assert_allclose(explanation.rel_error, dead_share, rtol=1e-4)


def _net_with_a_channel_alive_through_its_bn_shift(rng):
    """block2_conv_b channel 0 has only negative weights (Σ a w⁺ = 0 on ReLU inputs), but
    its BN shift β = 0.5 keeps it active; dense1/logits have positive weights and no bias,
    so every layer above conserves and only this channel's relevance can leak."""
    model = taylor_net(SHAPE, widths=(2, 3))
    x = gm_volume(rng, SHAPE, batch=2)
    conv = model.get_layer("block2_conv_b")
    kernel, bias = conv.get_weights()
    kernel[..., 0] = -0.01 * np.abs(kernel[..., 0])
    bias[0] = 0.0
    conv.set_weights([kernel, bias])
    bn = model.get_layer("block2_bn")
    bn.beta.assign(np.where(np.arange(bn.beta.shape[0]) == 0, 0.5, 0.0).astype("float32"))
    for name in ("dense1", "logits"):
        weights, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([np.abs(weights), np.zeros_like(bias)])
    return positive_logit_bias(model, x), x


def test_positive_bn_shift_leak_is_localised_by_the_trace(rng):
    """A channel without positive input can stay active through its BN shift; z⁺ at conv_b
    cannot pass that relevance down (the seed needs biases ≤ 0). The trace pins the leak
    to that layer."""
    model, x = _net_with_a_channel_alive_through_its_bn_shift(rng)
    alive = np.asarray(keras.Model(model.inputs[0], model.get_layer("block2_relu").output)(x))[..., 0]
    assert (alive > 0.4).all()  # the shift keeps the channel on everywhere
    explanation = RelevanceAnalyzer(model, "dtd").explain(x)
    errors = explanation.trace_rel_error()
    leaking = [k for k, v in errors.items() if np.any(v > 1e-5)]
    assert leaking, "the shifted channel's relevance should leak"
    assert leaking[0].endswith("_conv_b")  # first leak (from the top) is at a conv_b
    assert leaking[0] == "block2_conv_b"
    assert np.all(errors["block2_conv_b"] > 0.5)  # the shifted channel carries most relevance
    assert np.isfinite(explanation.maps).all()
    np.testing.assert_allclose(explanation.relevance_sum, explanation.trace["block1_conv_a"], rtol=1e-6)


@pytest.mark.slow
def test_full_four_block_network_conserves(rng):
    """The product's 4-block graph (small widths) at about the smallest valid grid."""
    shape = (80, 84, 78, 1)
    x = gm_volume(rng, shape, batch=2)
    model = randomize_batch_norm(taylor_net(shape, widths=(4, 4, 6, 6), dense_units=8), rng, x)
    positive_logit_bias(model, x)
    for bn_mode in ("passthrough", "canonize"):
        explanation = RelevanceAnalyzer(model, "dtd", bn_mode=bn_mode).explain(x, target="all")
        _assert_conserved_layer_by_layer(explanation)
        assert explanation.maps.min() >= 0.0
    assert len(explanation.trace) == 4 * 5 + 3

"""Contrastive targets (heads.py): a virtual difference layer merged into the logits layer, for
every layer-wise composite, against the float64 dense-matrix reference, and conservation of the
contrast layer by layer."""

import keras
import numpy as np
import pytest

from brainage.relevance import GradientAnalyzer, RelevanceAnalyzer, make_analyzer

from . import dense_chain
from .nets import float64_twin, randomize_batch_norm, small_chain, trained_small_chain

CONTRASTS = [None, 1, "runnerup", "mean", "logodds"]
COMPOSITES = ["dtd", "dtd_w2", "lrp_composite", "epsilon_plus"]


# The nets are explained in float64 (float64 twins of float32 nets: the same weights), so the
# comparisons with the float64 dense reference measure the rules, not float32 round-off: a
# near-zero LRP denominator magnified that past 1e-5 (one element of 216 at 6.8e-5 on the random
# net's logodds), and how far depended on the thread schedule. Rule by rule, float32 has its
# own test with a bound derived from the conditioning (test_rules_dense_matrix.py).
@pytest.fixture(scope="module")
def random_net():
    rng = np.random.default_rng(11)
    x = rng.uniform(0.0, 1.0, (3, 9, 8, 1)).astype("float32")
    return float64_twin(randomize_batch_norm(small_chain(seed=3), rng, x)), x.astype(np.float64)


@pytest.fixture(scope="module")
def trained_net():
    model, x, _ = trained_small_chain(np.random.default_rng(12))
    return float64_twin(model), x[:4].astype(np.float64)


def reference_explanation(model, analyzer, explanation, x, contrast, canonize):
    """Per input: the float64 map, explained value and relevance sums by layer."""
    ops = dense_chain.chain_ops(model, canonize=canonize)
    rules = dense_chain.reference_rules(analyzer)
    maps, values, sums = [], [], []
    for i, c in enumerate(explanation.target):
        xi = x[i].reshape(-1)
        value, virtual, top = dense_chain.contrast_top(dense_chain.forward(ops, xi)[0][-1], int(c), contrast)
        r, s = dense_chain.lrp(ops, xi, top, rules, virtual)
        maps.append(r)
        values.append(value)
        sums.append(s)
    return np.array(maps), np.array(values), sums


def assert_matches_reference(explanation, maps, values, sums, rtol=1e-9):
    scale = np.abs(maps).max()
    np.testing.assert_allclose(explanation.maps.reshape(len(maps), -1), maps, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(explanation.outputs, values, rtol=rtol, atol=rtol * np.abs(values).max())
    for name in sums[0]:
        expected = np.array([s[name] for s in sums])
        np.testing.assert_allclose(explanation.trace[name], expected, rtol=rtol, atol=rtol * np.abs(values).max(),
                                   err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("contrast", CONTRASTS, ids=str)
@pytest.mark.parametrize("composite", COMPOSITES)
@pytest.mark.parametrize(("net", "bn_mode"), [("random_net", "canonize"), ("trained_net", "passthrough")])
def test_contrast_matches_dense_reference(net, bn_mode, composite, contrast, request):
    model, x = request.getfixturevalue(net)
    analyzer = make_analyzer(model, composite, bn_mode=bn_mode, compile=False)
    explanation = analyzer.explain(x, contrast=contrast)
    assert explanation.target_mode == ("predicted" if contrast is None else
                                       "predicted-logodds" if contrast == "logodds" else f"predicted-vs-{contrast}")
    maps, values, sums = reference_explanation(model, analyzer, explanation, x, contrast, bn_mode == "canonize")
    assert_matches_reference(explanation, maps, values, sums)


def alive_relevance(model, x, classes, others, contrast, canonize):
    """Per (class, input): the top relevance on virtual units with a positive contribution
    ``Σ a (w_c − w_k)⁺ > 0`` (z⁺ passes only these down; the rest is the logits layer's sink)."""
    ops = dense_chain.chain_ops(model, canonize=canonize)
    out = np.zeros(classes.shape)
    for (t, i), c in np.ndenumerate(classes):
        acts, _ = dense_chain.forward(ops, x[i].reshape(-1))
        other = others[t, i] if contrast == "runnerup" else contrast
        _, virtual, top = dense_chain.contrast_top(acts[-1], int(c), other)
        alive = acts[-2] @ np.maximum(ops[-1]["w"] @ virtual, 0.0) > 0
        out[t, i] = top[alive].sum()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("contrast", CONTRASTS[1:], ids=str)
@pytest.mark.parametrize("bn_mode", ["passthrough", "canonize"])
@pytest.mark.parametrize("net", ["random_net", "trained_net"])
def test_dtd_contrasts_conserve_layer_by_layer(net, bn_mode, contrast, request):
    """ΣR = the contrast (z_c − z_k, z_c − mean z_k, log p_c/(1 − p_c)) at every layer, for every
    class, except for the relevance of a virtual unit without positive contribution (a dead unit,
    computed independently in float64), which the logits layer reports as its sink."""
    model, x = request.getfixturevalue(net)
    for preset in ("dtd", "dtd_w2"):
        analyzer = make_analyzer(model, preset, bn_mode=bn_mode, compile=False)
        explanation = analyzer.explain(x, target="all", contrast=contrast)
        assert explanation.maps.shape == (4, *x.shape)
        passed = alive_relevance(model, x, explanation.target, explanation.contrast, contrast, bn_mode == "canonize")
        conserved = np.isclose(passed, explanation.outputs, rtol=1e-5) & (explanation.outputs != 0)
        assert conserved.sum() >= 2 * len(x)
        scale = np.abs(explanation.outputs).max()
        for layer, total in explanation.trace.items():
            np.testing.assert_allclose(total, passed, rtol=1e-5, atol=1e-6 * scale, err_msg=f"{preset} {layer}")
        assert np.all(explanation.rel_error[conserved] < 1e-5)
        for err in explanation.balance_rel_error().values():  # what leaked is the logits' sink
            assert np.nanmax(err) < 1e-5
        np.testing.assert_array_equal(explanation.maps[explanation.outputs == 0], 0.0)


def test_contrast_values_and_classes(trained_net):
    model, x = trained_net
    logits = np.asarray(model(x), dtype=np.float64)
    analyzer = RelevanceAnalyzer(model, "dtd", compile=False)
    predicted = logits.argmax(1)
    rows = np.arange(len(x))
    masked = np.where(np.eye(4)[predicted] > 0, -np.inf, logits)
    runner_up = masked.argmax(1)
    by_target = {
        "predicted-vs-runnerup": logits[rows, predicted] - logits[rows, runner_up],
        "predicted-vs-mean": logits[rows, predicted] - (logits.sum(1) - logits[rows, predicted]) / 3,
        "predicted-logodds": logits[rows, predicted] - np.log(np.exp(masked).sum(1)),
    }
    for target, expected in by_target.items():
        explanation = analyzer.explain(x, target=target)
        np.testing.assert_allclose(explanation.outputs, expected, rtol=1e-5, atol=1e-6 * np.abs(logits).max())
        np.testing.assert_array_equal(explanation.target, predicted)
    np.testing.assert_array_equal(analyzer.explain(x, target="predicted-vs-runnerup").contrast, runner_up)
    np.testing.assert_array_equal(analyzer.explain(x, target="predicted-vs-2").contrast, [2] * len(x))
    assert (analyzer.explain(x, target="predicted-vs-mean").contrast == -1).all()


def test_default_contrast_from_the_analyzer(trained_net):
    model, x = trained_net
    by_default = RelevanceAnalyzer(model, "dtd", contrast="mean", compile=False)
    assert by_default.explain(x).target_mode == "predicted-vs-mean"
    np.testing.assert_array_equal(
        by_default.explain(x).maps, RelevanceAnalyzer(model, "dtd", compile=False).explain(x, target="predicted-vs-mean").maps
    )
    assert by_default.explain(x, target="predicted-logodds").target_mode == "predicted-logodds"
    with pytest.raises(ValueError, match="contrast must be a class index"):
        RelevanceAnalyzer(model, "dtd", contrast="median")


def test_contrast_on_a_convolutional_head_with_global_pooling(rng):
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((7, 8, 1)), keras.layers.Conv2D(3, 3, activation="relu", name="c1"),
                              keras.layers.Conv2D(3, 3, name="head"), keras.layers.GlobalAveragePooling2D(name="gap")])
    model = float64_twin(model)
    x = rng.uniform(0.0, 1.0, (2, 7, 8, 1))
    analyzer = make_analyzer(model, "dtd", compile=False)
    for contrast in ("mean", "logodds", 0):
        explanation = analyzer.explain(x, contrast=contrast)
        assert_matches_reference(explanation, *reference_explanation(model, analyzer, explanation, x, contrast, False))


@pytest.mark.parametrize(
    ("tail", "message"),
    [(keras.layers.ReLU(name="after"), "'after' \\(ReLU\\) follows it"),
     (keras.layers.Activation("relu", name="after"), "'after' \\(Activation\\) follows it")],
)
def test_contrast_refuses_a_nonlinear_head(tail, message, rng):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="logits"), tail])
    with pytest.raises(ValueError, match=message):
        RelevanceAnalyzer(model, "dtd").explain(rng.uniform(size=(2, 6)).astype("float32"), contrast="mean")
    relu_logits = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu", name="logits")])
    with pytest.raises(ValueError, match="'logits', but it applies a ReLU"):
        RelevanceAnalyzer(relu_logits, "dtd").explain(rng.uniform(size=(2, 6)).astype("float32"), contrast="mean")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the hand reference uses tf.GradientTape")
@pytest.mark.parametrize("contrast", CONTRASTS[1:], ids=str)
def test_gradient_methods_differentiate_the_contrast(trained_net, contrast):
    import tensorflow as tf

    model, x = trained_net
    explanation = GradientAnalyzer(model, compile=False).explain(x, contrast=contrast)
    c = explanation.target
    with tf.GradientTape() as tape:
        xt = tf.constant(x)
        tape.watch(xt)
        z = model(xt)
        onehot = tf.one_hot(c, 4, dtype=z.dtype)
        if contrast == "logodds":
            log_p = tf.nn.log_softmax(z)
            value = tf.reduce_sum(onehot * log_p, 1) - tf.math.log1p(-tf.exp(tf.reduce_sum(onehot * log_p, 1)))
        elif contrast == "mean":
            value = tf.reduce_sum((onehot - (1 - onehot) / 3) * z, 1)
        else:
            value = tf.reduce_sum((onehot - tf.one_hot(explanation.contrast, 4, dtype=z.dtype)) * z, 1)
    np.testing.assert_allclose(explanation.outputs, value.numpy(), rtol=1e-5, atol=1e-6 * np.abs(np.asarray(z)).max())
    np.testing.assert_allclose(explanation.maps, tape.gradient(value, xt).numpy(), rtol=1e-4, atol=1e-6)

"""BatchNormalization: passthrough (seed eq. 3.1) and canonisation (fold into conv_b)."""

import keras
import numpy as np
import pytest

from brainage.relevance import RelevanceAnalyzer, compare_bn_modes

from .nets import bn_free_copy, gm_volume, positive_logit_bias, randomize_batch_norm, taylor_net

SHAPE = (14, 15, 13, 1)


@pytest.fixture
def net(rng):
    x = gm_volume(rng, SHAPE, batch=2)
    model = randomize_batch_norm(taylor_net(SHAPE, widths=(4,)), rng, x, negative_gamma=True)
    return positive_logit_bias(model, x), x


@pytest.mark.slow
@pytest.mark.parametrize("composite", ["dtd", "lrp_composite", "epsilon_plus"])
def test_canonize_equals_hand_folded_bn_free_model(net, composite):
    model, x = net
    folded = bn_free_copy(model)
    np.testing.assert_allclose(np.asarray(folded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    canon = RelevanceAnalyzer(model, composite, bn_mode="canonize").explain(x)
    reference = RelevanceAnalyzer(folded, composite).explain(x)
    scale = np.abs(reference.maps).max()
    np.testing.assert_allclose(canon.maps, reference.maps, rtol=1e-5, atol=1e-6 * scale)


def test_passthrough_keeps_relevance_across_bn(net):
    model, x = net
    explanation = RelevanceAnalyzer(model, "dtd").explain(x)
    # R_i = R_j: the sum after BN equals the sum that entered it (the ReLU's).
    np.testing.assert_array_equal(explanation.trace["block1_bn"], explanation.trace["block1_relu"])


@pytest.mark.slow
def test_bn_modes_agree_for_zplus_with_positive_gamma_only(rng):
    """z⁺ ratios ignore a positive per-channel scale and any bias: with γ > 0 both modes give
    the same DTD map; a negative γ swaps w⁺ and w⁻ and the modes differ."""
    x = gm_volume(rng, SHAPE, batch=2)
    same = positive_logit_bias(randomize_batch_norm(taylor_net(SHAPE, widths=(4,)), rng, x), x)
    report = compare_bn_modes(same, x)
    assert report["mean_rel_l1"] < 1e-5 and report["mean_correlation"] > 0.99999
    flipped = positive_logit_bias(
        randomize_batch_norm(taylor_net(SHAPE, widths=(4,)), rng, x, negative_gamma=True), x
    )
    report = compare_bn_modes(flipped, x)
    assert report["mean_rel_l1"] > 1e-3
    assert set(report) >= {"correlation", "rel_l1", "rel_error_passthrough", "rel_error_canonize"}


def test_canonize_needs_a_linear_layer_before_bn():
    model = keras.Sequential(
        [keras.Input((5, 5, 1)), keras.layers.Conv2D(2, 3, activation="relu"), keras.layers.BatchNormalization(name="bn"),
         keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    with pytest.raises(ValueError, match="'bn'.*canonize"):
        RelevanceAnalyzer(model, "dtd", bn_mode="canonize")
    RelevanceAnalyzer(model, "dtd", bn_mode="passthrough")

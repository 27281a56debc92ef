"""Branching networks end to end: conservation layer by layer (every node of the graph) for every
conserving method on a residual + concatenating 3D net and a tiny 3D U-Net; the books of the
others; regions of a per-voxel output; gradient methods on graphs against Keras's own gradient;
the graph walk on a chain gives the chain's maps."""

import keras
import numpy as np
import pytest

from brainage.relevance import make_analyzer
from brainage.relevance._dag import build_dag

from .dag_nets import calibrate_batch_norm, residual_concat_net, tiny_unet
from .nets import gm_volume, positive_logit_bias, randomize_batch_norm, taylor_net

# (method, parameters): biases left out of every rule, so each conserves exactly (up to dead units,
# which these nets avoid: biases 0, inputs in [0, 1]).
CONSERVING = [
    ("dtd", {}),
    ("dtd_w2", {}),
    ("dtd_seed", {}),
    ("lrp_composite", {"epsilon": 0.0, "use_bias": False}),
    ("epsilon_plus", {"epsilon": 0.0, "use_bias": False}),
]
ABSORBING = [("lrp_composite", {}), ("epsilon_plus", {})]


def _assert_conserved_layer_by_layer(e, tol=1e-5):
    """Every node's frontier sum equals the explained value within ``tol`` relative to the larger
    of ``|outputs|`` and the map's mass ``Σ|R|``: LRP-0 splits mixed signs, and float32 rounding
    then scales with the mass (up to ~120× the value on these nets), not with the value. For DTD
    the maps are nearly positive, so this is ``|outputs|``."""
    assert e.trace, "no trace"
    mass = np.abs(e.maps).reshape(*e.outputs.shape, -1).sum(-1)
    scale = np.maximum(np.abs(e.outputs), mass)
    for layer, total in e.trace.items():
        err = np.abs(total - e.outputs) / scale
        assert np.max(err) <= tol, (layer, err)
    assert np.max(np.abs(e.relevance_sum - e.outputs) / scale) <= tol


@pytest.fixture(scope="module")
def residual():
    rng = np.random.default_rng(7)
    x = gm_volume(rng, (7, 8, 6, 1), batch=2)
    return residual_concat_net(batch_norm=False), x


@pytest.fixture(scope="module")
def unet():
    rng = np.random.default_rng(8)
    x = gm_volume(rng, (6, 8, 4, 1), batch=2)
    model = tiny_unet()
    mask = np.zeros(model.output_shape[1:-1], bool)
    mask[1:4, 2:5, 1:3] = True
    return model, x, mask


@pytest.mark.slow
@pytest.mark.parametrize("name, params", CONSERVING, ids=[f"{n}{'_nobias' if p else ''}" for n, p in CONSERVING])
def test_residual_concat_net_conserves_every_node(residual, name, params):
    model, x = residual
    e = make_analyzer(model, name, **params).explain(x, target="all" if name != "dtd_seed" else "predicted")
    names = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert sorted(e.trace) == sorted(names)  # every node of the graph has its row
    _assert_conserved_layer_by_layer(e)


@pytest.mark.slow
@pytest.mark.parametrize("name, params", CONSERVING, ids=[f"{n}{'_nobias' if p else ''}" for n, p in CONSERVING])
def test_unet_region_conserves_every_node(unet, name, params):
    model, x, mask = unet
    e = make_analyzer(model, name, **params).explain(x, target=1, output_mask=mask)
    logits = np.asarray(model(x), np.float64)
    np.testing.assert_allclose(e.outputs, logits[:, mask, 1].sum(axis=1), rtol=1e-5)
    _assert_conserved_layer_by_layer(e)


@pytest.mark.slow
@pytest.mark.parametrize("name, params", ABSORBING, ids=[n for n, _ in ABSORBING])
def test_absorbing_rules_balance_their_books_on_graphs(residual, unet, name, params):
    """ε and biases absorb relevance; maps plus every node's sink still equal the explained value."""
    model, x = residual
    e = make_analyzer(model, name, **params).explain(x, target="predicted-vs-mean")
    assert np.nanmax(e.books_rel_error) <= 1e-5
    model, x, mask = unet
    e = make_analyzer(model, name, **params).explain(x, target="all", output_mask=mask)
    assert e.maps.shape == (2, *x.shape)
    assert np.nanmax(e.books_rel_error) <= 1e-5


@pytest.mark.slow
def test_batch_norm_in_a_branch_canonized_or_passed(rng):
    """MergeBatchNorm folds the residual branch's BN into conv_b. z⁺ ignores a positive
    per-channel scale (γ > 0) and the bias, so DTD's map is unchanged; LRP-γ with biases sees the
    folded bias, so its map changes. Either way the books balance."""
    x = gm_volume(rng, (7, 8, 6, 1), batch=2)
    model = calibrate_batch_norm(residual_concat_net(batch_norm=True), rng, x)
    maps = {}
    for name in ("dtd", "lrp_composite"):
        passed = make_analyzer(model, name).explain(x)
        merged = make_analyzer(model, name, bn_mode="canonize").explain(x)
        assert merged.trace.keys() == passed.trace.keys()  # the folded BN stays as an identity row
        for e in (passed, merged):
            assert np.nanmax(e.books_rel_error) <= 1e-5
        maps[name] = passed.maps, merged.maps
    np.testing.assert_allclose(*maps["dtd"], rtol=1e-4, atol=1e-7)
    assert not np.allclose(*maps["lrp_composite"], rtol=1e-3)


@pytest.mark.slow
def test_region_map_sums_to_the_masked_logit_sum_per_input_mask(unet):
    model, x, _ = unet
    masks = np.zeros((2, *model.output_shape[1:-1]), bool)
    masks[0, 0, 0, 0] = True  # one voxel
    masks[1] = True  # the whole output
    e = make_analyzer(model, "dtd").explain(x, target="all", output_mask=masks)
    logits = np.asarray(model(x), np.float64)
    for c in range(2):
        expected = [(logits[i, ..., c] * masks[i]).sum() for i in range(2)]
        np.testing.assert_allclose(e.outputs[c], expected, rtol=1e-5)
        np.testing.assert_allclose(e.maps[c].sum(axis=(1, 2, 3, 4)), expected, rtol=1e-5,
                                   atol=1e-6 * np.abs(expected).max())
    assert e.target.tolist() == [[0, 0], [1, 1]]


def test_region_targets_are_checked(unet, residual):
    model, x, mask = unet
    analyzer = make_analyzer(model, "dtd")
    with pytest.raises(ValueError, match="per-voxel output.*pass output_mask"):
        analyzer.explain(x, target=0)
    with pytest.raises(ValueError, match="channel index or 'all'"):
        analyzer.explain(x, output_mask=mask)
    with pytest.raises(ValueError, match="channel index or 'all'"):
        analyzer.explain(x, target="0-vs-1", output_mask=mask)
    with pytest.raises(ValueError, match=r"output_mask must be boolean, shaped \(4, 7, 3\).*got bool \(3, 7, 3\)"):
        analyzer.explain(x, target=0, output_mask=mask[:-1])
    with pytest.raises(ValueError, match="out of range"):
        analyzer.explain(x, target=2, output_mask=mask)
    with pytest.raises(ValueError, match="clrp: output_mask .* is not supported: CLRP and SGLRP"):
        make_analyzer(model, "clrp").explain(x, target=0, output_mask=mask)
    model, x = residual
    with pytest.raises(ValueError, match="needs a per-voxel output"):
        make_analyzer(model, "dtd").explain(x, target=0, output_mask=mask)


def test_multiply_by_a_constant_and_fan_out_of_the_input(rng):
    """``x * c`` on Keras tensors passes relevance; the input read by two layers sums both."""
    inputs = keras.Input((5, 4, 3, 1))
    left = keras.layers.Conv3D(2, 3, padding="same", activation="relu", name="left")(inputs)
    right = keras.layers.Conv3D(2, 1, activation="relu", name="right")(inputs)
    both = keras.layers.Add(name="both")([left * 2.0, right])
    outputs = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling3D(name="gap")(both))
    model = keras.Model(inputs, outputs)
    x = gm_volume(rng, (5, 4, 3, 1))
    e = make_analyzer(model, "dtd").explain(x, target="all")
    _assert_conserved_layer_by_layer(e)
    assert len(e.trace) == 6  # left, right, the multiply, both, gap, logits


def _keras_gradient(model, x, cotangent):
    """∂(Σ cotangent · model(x))/∂x by the backend's own autodiff of the Keras model."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: (model(v) * cotangent).sum())(x))
    import tensorflow as tf

    v = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(v)
        total = tf.reduce_sum(model(v) * cotangent)
    return tape.gradient(total, v).numpy()


@pytest.mark.slow
def test_gradients_on_graphs_are_the_models_own(residual, unet):
    model, x = residual
    e = make_analyzer(model, "gradient_x_input").explain(x, target=2)
    onehot = np.zeros((2, 3), np.float32)
    onehot[:, 2] = 1
    np.testing.assert_allclose(e.maps, x * _keras_gradient(model, x, onehot), rtol=1e-4, atol=1e-7)
    model, x, mask = unet
    e = make_analyzer(model, "gradient").explain(x, target=1, output_mask=mask)
    cotangent = np.zeros((2, *model.output_shape[1:]), np.float32)
    cotangent[:, mask, 1] = 1
    np.testing.assert_allclose(e.maps, _keras_gradient(model, x, cotangent), rtol=1e-4, atol=1e-7)
    guided = make_analyzer(model, "guided_backprop").explain(x, target=1, output_mask=mask)
    assert guided.maps.shape == x.shape and np.isfinite(guided.maps).all()
    assert not np.allclose(guided.maps, e.maps)


@pytest.mark.parametrize("name", ["dtd", "lrp_composite", "guided_backprop"])
def test_graph_walk_of_a_chain_gives_the_chains_maps(name, rng):
    """The same chain, explained by the chain code and by the graph walk (forced), agrees."""
    shape = (20, 21, 19, 1)
    x = gm_volume(rng, shape)
    model = positive_logit_bias(randomize_batch_norm(taylor_net(shape), rng, x), x)
    chain = make_analyzer(model, name, compile=False)
    walked = make_analyzer(model, name, compile=False)
    walked.dag = build_dag(model, walked.canonizers)
    assert chain.dag is None
    a, b = chain.explain(x, target="all"), walked.explain(x, target="all")
    np.testing.assert_allclose(b.maps, a.maps, rtol=1e-6, atol=1e-7 * np.abs(a.maps).max())
    if a.trace:
        assert list(b.trace) == list(a.trace)
        for key in a.trace:
            np.testing.assert_allclose(b.trace[key], a.trace[key], rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_integrated_gradients_and_smoothgrad_run_on_graphs(residual):
    model, x = residual
    e = make_analyzer(model, "integrated_gradients", steps=64).explain(x, target=0)
    completeness = np.asarray(model(x))[:, 0] - np.asarray(model(np.zeros_like(x)))[:, 0]
    np.testing.assert_allclose(e.maps.reshape(2, -1).sum(1), completeness, rtol=0.02, atol=1e-3)
    s = make_analyzer(model, "smoothgrad", samples=2, batch_size=4).explain(x, target=0)
    assert s.maps.shape == x.shape and np.isfinite(s.maps).all() and np.abs(s.maps).max() > 0


def test_a_shared_layer_has_a_row_per_call_and_conserves(rng):
    """One Conv3D applied to two branches (shared weights): two nodes, two trace rows."""
    inputs = keras.Input((6, 5, 4, 1))
    stem = keras.layers.Conv3D(3, 3, padding="same", activation="relu", name="stem")(inputs)
    shared = keras.layers.Conv3D(3, 1, activation="relu", name="shared")
    pooled = keras.layers.AveragePooling3D(1, name="identity_pool")(stem)
    both = keras.layers.Concatenate(name="both")([shared(stem), shared(pooled)])
    outputs = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling3D(name="gap")(both))
    model = keras.Model(inputs, outputs)
    e = make_analyzer(model, "dtd").explain(gm_volume(rng, (6, 5, 4, 1)), target="all")
    assert {"shared", "shared@2"} <= set(e.trace) and len(e.trace) == 7
    _assert_conserved_layer_by_layer(e)

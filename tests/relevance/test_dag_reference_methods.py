"""DeepLIFT and DTD rooted at a reference on branching graphs and max pooling: maps against an
independent float64 walk of the graph's matrices (:mod:`.dense_graph`), completeness
(ΣR = f(x) − f(x_ref)) node by node, on the residual + concatenating net, a region of the tiny
U-Net's per-voxel output and a chain with overlapping max pooling; Grad-CAM inside a residual
block against its gradient by hand."""

import keras
import numpy as np
import pytest

from brainage.relevance import make_analyzer

from . import dense_graph
from .dag_nets import residual_concat_net, tiny_unet
from .dense_reference import conv_matrix
from .nets import gm_volume

METHODS = ["deeplift", "dtd_reference"]


def _assert_complete(e, tol=1e-5):
    """Every node's traced sum and the map's sum equal the explained difference."""
    scale = np.maximum(np.abs(e.outputs), 1e-3 * np.abs(e.outputs).max())
    assert e.trace
    for layer, total in e.trace.items():
        assert np.max(np.abs(total - e.outputs) / scale) <= tol, layer
        assert np.all(e.sinks[layer] == 0.0) or np.max(np.abs(e.sinks[layer]) / scale) <= tol, layer
    assert np.max(np.abs(e.relevance_sum - e.outputs) / scale) <= tol


def _dense_maps(model, method, e, x, reference, tops):
    ops = dense_graph.graph_ops(model)
    maps = np.zeros(e.maps.shape).reshape(len(x), -1)
    for i in range(len(x)):
        run = dense_graph.deeplift if method == "deeplift" else dense_graph.dtd_reference
        cotangent = tops[i]
        top = cotangent if method == "deeplift" else cotangent * (
            dense_graph.forward(ops, x[i])[0][ops[-1]["output"]]
            - dense_graph.forward(ops, np.broadcast_to(reference, x[i].shape))[0][ops[-1]["output"]])
        maps[i], sums = run(ops, x[i], reference, top)
        for name, total in sums.items():  # the hand walk is complete too
            np.testing.assert_allclose(total, e.outputs[i], rtol=1e-5, atol=1e-9, err_msg=name)
    return maps.reshape(e.maps.shape)


@pytest.fixture(scope="module")
def residual():
    rng = np.random.default_rng(7)
    return residual_concat_net(batch_norm=False), gm_volume(rng, (7, 8, 6, 1), batch=2)


@pytest.mark.slow  # 10-20 s each: the hand walk multiplies full convolution matrices
@pytest.mark.parametrize("method", METHODS)
def test_residual_concat_net_matches_dense_walk_and_is_complete(residual, method):
    model, x = residual
    for reference in (x.mean(axis=0), 0.0):
        e = make_analyzer(model, method, reference=reference, compile=False).explain(x)
        tops = np.eye(model.output_shape[-1])[e.target]
        maps = _dense_maps(model, method, e, x, reference, tops)
        np.testing.assert_allclose(e.maps, maps, rtol=1e-5, atol=1e-5 * np.abs(maps).max())
        _assert_complete(e)
        logits = np.asarray(model(x))
        at_ref = np.asarray(model(np.broadcast_to(reference, x.shape[1:])[None]))
        rows = np.arange(len(x))
        np.testing.assert_allclose(e.outputs, logits[rows, e.target] - at_ref[0, e.target], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_residual_concat_net_contrasts_are_complete(residual, method):
    model, x = residual
    for target in ("predicted-vs-mean", "all-vs-runnerup"):
        _assert_complete(make_analyzer(model, method, reference=x.mean(axis=0), compile=False).explain(x, target=target))


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_unet_region_matches_dense_walk_and_is_complete(method):
    rng = np.random.default_rng(8)
    x = gm_volume(rng, (6, 8, 4, 1), batch=2)
    model = tiny_unet()
    mask = np.zeros(model.output_shape[1:-1], bool)
    mask[1:4, 2:5, 1:3] = True
    reference = x.mean(axis=0) * 0.5
    e = make_analyzer(model, method, reference=reference, compile=False).explain(x, target=1, output_mask=mask)
    top = (mask[..., None] * np.eye(2)[1]).reshape(-1)
    maps = _dense_maps(model, method, e, x, reference, [top, top])
    np.testing.assert_allclose(e.maps, maps, rtol=1e-5, atol=1e-5 * np.abs(maps).max())
    _assert_complete(e)
    region = (np.asarray(model(x))[..., 1] - np.asarray(model(reference[None]))[..., 1])[:, mask].sum(-1)
    np.testing.assert_allclose(e.outputs, region, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_overlapping_max_pooling_chain_matches_dense_walk(method, rng):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((5, 6, 4, 1)), keras.layers.Conv3D(3, 2, name="conv"),
                              keras.layers.MaxPooling3D(2, strides=1, name="maxpool"), keras.layers.ReLU(name="relu"),
                              keras.layers.GlobalAveragePooling3D(name="gap"), keras.layers.Dense(2, name="logits")])
    x = rng.uniform(0.0, 1.0, (3, 5, 6, 4, 1)).astype("float32")
    reference = rng.uniform(0.0, 1.0, (5, 6, 4, 1)).astype("float32")  # maxima move: both routes used
    e = make_analyzer(model, method, reference=reference, compile=False).explain(x, target=0)
    maps = _dense_maps(model, method, e, x, reference, np.eye(2)[[0, 0, 0]])
    np.testing.assert_allclose(e.maps, maps, rtol=1e-5, atol=1e-5 * np.abs(maps).max())
    _assert_complete(e)


def test_gradcam_inside_a_residual_block_is_its_gradient_by_hand(rng):
    """``logits = W·mean_v relu(a + b) + c`` with ``b = conv_b(a)``: at ``conv_b`` the gradient is
    ``W_c ⊙ 1[a + b > 0] / N``; at ``conv_a`` (read by ``conv_b`` and the Add) it adds ``conv_bᵀ`` of it."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((5, 4, 6, 1))
    a = keras.layers.Conv3D(3, 3, padding="same", activation="relu", name="conv_a")(inputs)
    b = keras.layers.Conv3D(3, 3, padding="same", name="conv_b")(a)
    r = keras.layers.ReLU(name="res_relu")(keras.layers.Add(name="res_add")([a, b]))
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling3D(name="gap")(r)))
    x = rng.uniform(0.0, 1.0, (2, 5, 4, 6, 1)).astype("float32")
    acts = keras.Model(inputs, [a, b])(x)
    a_val, b_val = (np.asarray(v, np.float64) for v in acts)
    w = model.get_layer("logits").get_weights()[0].astype(np.float64)
    w_b = conv_matrix(model.get_layer("conv_b").get_weights()[0].astype(np.float64), (5, 4, 6), (1, 1, 1), "same")[0]
    for layer, activation in (("conv_b", b_val), ("conv_a", a_val)):
        e = make_analyzer(model, "gradcam", layer=layer, compile=False).explain(x, target=1)
        for i in range(2):
            grad = (a_val[i] + b_val[i] > 0) * w[:, 1] / (5 * 4 * 6)
            if layer == "conv_a":
                grad = grad + (w_b @ grad.reshape(-1)).reshape(grad.shape)
            cam = np.maximum((activation[i] * grad.mean(axis=(0, 1, 2))).sum(-1), 0.0)
            np.testing.assert_allclose(e.extras["cam"][i], cam, rtol=1e-4, atol=1e-6 * cam.max())
            np.testing.assert_allclose(e.maps[i, ..., 0], cam, rtol=1e-4, atol=1e-6 * cam.max())


def _unet_and_its_region_sum(rng):
    """The tiny U-Net, inputs, a mask, and the same network with ``Σ_{v∈mask} z_{v,1}`` as its one
    output: a 1×1×1 conv picking channel 1, then Flatten → Dense(1) with the mask as weights."""
    model = tiny_unet()
    x = gm_volume(rng, (6, 8, 4, 1), batch=2)
    mask = np.zeros(model.output_shape[1:-1], bool)
    mask[1:4, 2:5, 1:3] = True
    pick = keras.layers.Conv3D(1, 1, use_bias=False, name="pick")
    dense = keras.layers.Dense(1, use_bias=False, name="region_sum")
    summed = keras.Model(model.input, dense(keras.layers.Flatten(name="flat")(pick(model.output))))
    pick.set_weights([np.array([0.0, 1.0], np.float32).reshape(1, 1, 1, 2, 1)])
    dense.set_weights([mask.reshape(-1, 1).astype(np.float32)])
    return model, x, mask, summed


@pytest.mark.parametrize("layer", ["enc_conv2", "bottom_conv"])
def test_gradcam_of_a_region_is_gradcam_of_the_masked_sum(layer, rng):
    """Grad-CAM of a U-Net region (``output_mask``) equals the chain-tested Grad-CAM of the same
    network with the region's sum as its one output."""
    model, x, mask, summed = _unet_and_its_region_sum(rng)
    e = make_analyzer(model, "gradcam", layer=layer, compile=False).explain(x, target=1, output_mask=mask)
    ref = make_analyzer(summed, "gradcam", layer=layer, compile=False).explain(x, target=0)
    np.testing.assert_allclose(e.outputs, np.asarray(summed(x))[:, 0], rtol=1e-5)
    np.testing.assert_allclose(e.outputs, np.asarray(model(x))[..., 1][:, mask].sum(-1), rtol=1e-5)
    assert np.abs(ref.maps).max() > 0
    np.testing.assert_allclose(e.extras["cam"], ref.extras["cam"], rtol=1e-5, atol=1e-7 * np.abs(ref.extras["cam"]).max())
    np.testing.assert_allclose(e.maps, ref.maps, rtol=1e-5, atol=1e-7 * np.abs(ref.maps).max())


@pytest.mark.parametrize(("method", "kwargs"), [
    ("integrated_gradients", {"steps": 8, "baseline": 0.1}),
    ("smoothgrad", {"samples": 4, "batch_size": 3, "noise_level": 0.1}),
    ("smoothgrad_x_input", {"samples": 3, "batch_size": 4})])
def test_path_and_noise_methods_of_a_region_are_those_of_the_masked_sum(method, kwargs, rng):
    """Integrated gradients and SmoothGrad of a U-Net region equal the same methods on the network
    with the region's sum as its one output (the chain-tested path); IG completes to the sum."""
    model, x, mask, summed = _unet_and_its_region_sum(rng)
    e = make_analyzer(model, method, compile=False, **kwargs).explain(x, target=1, output_mask=mask)
    ref = make_analyzer(summed, method, compile=False, **kwargs).explain(x, target=0)
    assert np.abs(ref.maps).max() > 0
    np.testing.assert_allclose(e.maps, ref.maps, rtol=1e-4, atol=1e-6 * np.abs(ref.maps).max())
    if method == "integrated_gradients":
        region = lambda v: np.asarray(model(v))[..., 1][:, mask].sum(-1)  # noqa: E731
        explained = region(x) - region(np.full_like(x, 0.1))
        np.testing.assert_allclose(e.maps.sum(axis=(1, 2, 3, 4)), explained, rtol=0.05)


def test_gradcam_refuses_a_layer_after_resampling():
    model = tiny_unet()
    with pytest.raises(ValueError, match="gradcam: layer 'dec_conv' is not on the input's spatial grid"):
        make_analyzer(model, "gradcam", layer="dec_conv")
    assert make_analyzer(model, "gradcam", layer="enc_conv2").layer == "enc_conv2"


@pytest.mark.parametrize("method", METHODS)
def test_a_constant_reference_ties_every_window_and_stays_complete(method, rng):
    """Zero reference, zero biases: every max-pooling window ties at the reference, and each
    output's difference still goes to one input (the first maximum), as in the hand walk."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((6, 5, 4, 1))
    a = keras.layers.Conv3D(3, 3, padding="same", name="conv")(inputs)
    a = keras.layers.ReLU(name="relu")(keras.layers.MaxPooling3D(2, name="maxpool")(a))
    g = keras.layers.GlobalMaxPooling3D(name="gmp")(keras.layers.Conv3D(2, 1, name="mix")(a))
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(g))
    x = -rng.uniform(0.0, 1.0, (2, 6, 5, 4, 1)).astype("float32")  # some maxima fall below the reference
    e = make_analyzer(model, method, compile=False).explain(x, target=1)
    maps = _dense_maps(model, method, e, x, 0.0, np.eye(2)[[1, 1]])
    np.testing.assert_allclose(e.maps, maps, rtol=1e-5, atol=1e-5 * np.abs(maps).max())
    _assert_complete(e)

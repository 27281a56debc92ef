"""Gradient, gradient × input, integrated gradients, guided backprop and Grad-CAM by hand."""

import keras
import numpy as np
import pytest

from brainage.relevance import (
    GradCAMAnalyzer,
    GradientAnalyzer,
    GuidedBackpropAnalyzer,
    IntegratedGradientsAnalyzer,
)

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="hand references use tf.GradientTape")


def _dense_net(rng):
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(4, activation="relu"),
         keras.layers.Dense(3)]
    )
    for layer in model.layers:
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    return model


def _tape_gradient(model, x, target):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logit = tf.gather(model(x), target, axis=1, batch_dims=1)
    return tape.gradient(logit, x).numpy()


def test_gradient_and_gradient_x_input(rng):
    model = _dense_net(rng)
    x = rng.uniform(0, 1, (4, 6)).astype("float32")
    explanation = GradientAnalyzer(model).explain(x)
    expected = _tape_gradient(model, x, explanation.target)
    np.testing.assert_allclose(explanation.maps, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(explanation.target, np.argmax(np.asarray(model(x)), axis=1))
    gxi = GradientAnalyzer(model, times_input=True).explain(x)
    np.testing.assert_allclose(gxi.maps, x * expected, rtol=1e-5, atol=1e-7)


def test_guided_backprop_by_hand(rng):
    model = _dense_net(rng)
    x = rng.uniform(0, 1, (3, 6)).astype("float32")
    (w1, b1), (w2, b2), (w3, _) = (layer.get_weights() for layer in model.layers)
    z1 = x @ w1 + b1
    z2 = np.maximum(z1, 0) @ w2 + b2
    explanation = GuidedBackpropAnalyzer(model).explain(x, target=2)
    g = np.tile(w3[:, 2], (3, 1))  # ∂logit/∂h2
    g = (z2 > 0) * np.maximum(g, 0)  # guided ReLU 2
    g = g @ w2.T
    g = (z1 > 0) * np.maximum(g, 0)  # guided ReLU 1
    np.testing.assert_allclose(explanation.maps, g @ w1.T, rtol=1e-5, atol=1e-6)


def test_integrated_gradients(rng):
    linear = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    x = rng.uniform(0, 1, (2, 6)).astype("float32")
    explanation = IntegratedGradientsAnalyzer(linear, steps=4).explain(x, target=1)
    np.testing.assert_allclose(explanation.maps, x * linear.layers[0].get_weights()[0][:, 1], rtol=1e-5)
    # Completeness on a ReLU net: Σ IG ≈ f(x) − f(0).
    model = _dense_net(rng)
    explanation = IntegratedGradientsAnalyzer(model, steps=512).explain(x)
    f0 = np.asarray(model(np.zeros_like(x)))[np.arange(2), explanation.target]
    np.testing.assert_allclose(explanation.relevance_sum, explanation.outputs - f0, rtol=1e-2, atol=1e-3)


def _cam_net(rng):
    model = keras.Sequential(
        [keras.Input((9, 10, 1)), keras.layers.Conv2D(3, 3, activation="relu", name="c1"),
         keras.layers.Conv2D(4, 3, name="c2"), keras.layers.ReLU(name="r2"),
         keras.layers.GlobalAveragePooling2D(name="gap"), keras.layers.Dense(3, name="logits")]
    )
    for layer in model.layers:
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    return model


def test_gradcam_by_hand_and_receptive_field_alignment(rng):
    model = _cam_net(rng)
    x = rng.uniform(0, 1, (2, 9, 10, 1)).astype("float32")
    explanation = GradCAMAnalyzer(model, layer="c2").explain(x, target=0)
    sub = keras.Model(model.inputs[0], model.get_layer("c2").output)
    head = keras.Sequential([model.get_layer("r2"), model.get_layer("gap"), model.get_layer("logits")])
    with tf.GradientTape() as tape:
        a = sub(x)
        tape.watch(a)
        logit = head(a)[:, 0]
    grads = tape.gradient(logit, a).numpy()
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cam = np.maximum((weights * a.numpy()).sum(-1), 0)
    np.testing.assert_allclose(explanation.extras["cam"], cam, rtol=1e-5, atol=1e-6)
    # Two valid 3×3 convs: cam voxel i is centred on input voxel i + 2; held constant outside.
    assert explanation.maps.shape == x.shape
    np.testing.assert_allclose(explanation.maps[:, 2:7, 2:8, 0], cam, rtol=1e-6)
    np.testing.assert_allclose(explanation.maps[:, :2, 2:8, 0], cam[:, :1].repeat(2, axis=1), rtol=1e-6)


def test_gradcam_alignment_with_pooling_and_same_padding(rng):
    model = keras.Sequential(
        [keras.Input((12, 9, 1)), keras.layers.Conv2D(2, 3, padding="same", name="c1"),
         keras.layers.AveragePooling2D(2, name="p1"), keras.layers.Conv2D(2, 3, name="c2"),
         keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    analyzer = GradCAMAnalyzer(model, layer="c2")
    # same conv keeps the grid; pool 2 → centres 0.5 + 2i; valid 3 → 0.5 + 2(i + 1).
    assert analyzer.alignment((12, 9)) == [(2.5, 2.0), (2.5, 2.0)]
    with pytest.raises(ValueError, match="no layer 'nope'"):
        GradCAMAnalyzer(model, layer="nope")

"""The seed's MNIST networks (seed 000 §2.2.3) through every preset, on sklearn digits at 28×28."""

import keras
import numpy as np
import pytest
from scipy.ndimage import zoom
from sklearn.datasets import load_digits

from brainage.relevance import COMPOSITES, METHODS, make_analyzer


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    images = np.stack([zoom(im / 16.0, 28 / 8, order=1) for im in data.images[:96]])
    return np.clip(images, 0, 1).astype("float32")[..., None], data.target[:96]


def _train(model, x, y):
    keras.utils.set_random_seed(0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    return model


def dense_net():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(name="flatten1"),
         keras.layers.Dense(300, activation="relu", name="dense3"),
         keras.layers.Dense(100, activation="relu", name="dense4"), keras.layers.Dense(10, name="dense5")]
    )


def cnn():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.AveragePooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = keras.layers.AveragePooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


def _zero_biases(model):
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    return model


@pytest.mark.slow
@pytest.mark.parametrize("build", [dense_net, cnn], ids=["dense_784_300_100_10", "cnn_avgpool"])
def test_every_preset_conserves_on_mnist_networks(build, digits):
    x, y = digits
    model = _train(build(), x, y)
    logits = np.asarray(model(x[:16]))
    correct = np.flatnonzero((logits.argmax(1) == y[:16]) & (logits.max(1) > 0))[:4]
    assert correct.size, "briefly trained net classifies nothing correctly"
    xs = x[correct]
    for preset in ("dtd", "dtd_w2"):  # DTD ignores biases: exact on the trained net
        explanation = make_analyzer(model, preset).explain(xs)
        assert explanation.max_rel_error < 1e-5, preset
        assert explanation.maps.min() >= 0
    # LRP-0/ε/γ hand relevance to biases (and ε); without them every preset conserves.
    unbiased = _zero_biases(model)
    xs = xs[np.asarray(unbiased(xs)).max(1) > 0]
    for preset in COMPOSITES:
        explanation = make_analyzer(unbiased, preset, **({"epsilon": 1e-9} if preset in ("lrp_composite", "epsilon_plus") else {})).explain(xs)
        assert explanation.max_rel_error < 1e-5, preset
        for layer, err in explanation.trace_rel_error().items():
            assert np.all(err < 1e-5), (preset, layer)


@pytest.mark.slow
def test_every_method_runs_on_the_cnn(digits):
    x, _ = digits
    model = cnn()
    params = {"gradcam": {"layer": "conv2"}, "integrated_gradients": {"steps": 4}, "smoothgrad": {"samples": 2},
              "smoothgrad_x_input": {"samples": 2}, "deeplift": {"reference": x.mean(axis=0)},
              "dtd_reference": {"reference": x.mean(axis=0)}}
    for name in METHODS:
        explanation = make_analyzer(model, name, **params.get(name, {})).explain(x[:3])
        assert explanation.maps.shape == x[:3].shape and np.isfinite(explanation.maps).all(), name

"""A regression model (one output, Dense(1), as the brain-age model of issue #13) through every
method: target "predicted" is that output; contrasts are refused with a clear error."""

import keras
import numpy as np
import pytest

from brainage.relevance import METHODS, make_analyzer

from .nets import small_chain

PARAMS = {"gradcam": {"layer": "conv_b"}, "integrated_gradients": {"steps": 4}, "smoothgrad": {"samples": 3},
          "smoothgrad_x_input": {"samples": 3}}
CONTRASTIVE = {"clrp", "sglrp"}
CONSERVATIVE = {"dtd", "dtd_w2", "dtd_seed"}
REFERENCE = {"deeplift", "dtd_reference"}


@pytest.fixture(scope="module")
def regression():
    """A tiny age regressor: age = 20 + 60 · mean grey matter, briefly trained."""
    rng = np.random.default_rng(61)
    x = rng.uniform(0.0, 1.0, (48, 9, 8, 1)).astype("float32") ** rng.uniform(0.5, 2.0, (48, 1, 1, 1)).astype("float32")
    y = 20.0 + 60.0 * x.mean(axis=(1, 2, 3))
    model = small_chain(n_classes=1, seed=6)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    return model, x[:3], x.mean(axis=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", [m for m in METHODS if m not in CONTRASTIVE])
def test_every_method_explains_the_predicted_value(regression, name):
    model, x, mean_image = regression
    params = dict(PARAMS.get(name, {}), compile=False)
    if name in REFERENCE:
        params["reference"] = mean_image
    explanation = make_analyzer(model, name, **params).explain(x, target="predicted")
    predicted = np.asarray(model(x))[:, 0]
    assert explanation.maps.shape == x.shape and np.isfinite(explanation.maps).all()
    np.testing.assert_array_equal(explanation.target, 0)
    if name in REFERENCE:  # ΣR = f(x) − f(x_ref)
        reference_value = np.asarray(model(mean_image[None]))[0, 0]
        np.testing.assert_allclose(explanation.outputs, predicted - reference_value, rtol=1e-4, atol=1e-4)
        assert explanation.max_rel_error < 1e-5
    else:
        np.testing.assert_allclose(explanation.outputs, predicted, rtol=1e-5)
    if name in CONSERVATIVE:  # ΣR = the predicted age, layer by layer
        for layer, err in explanation.trace_rel_error().items():
            assert np.all(err < 1e-5), (layer, err)
    if explanation.sinks:
        assert np.all(explanation.books_rel_error < 1e-5)


@pytest.mark.parametrize("name", list(METHODS))
def test_contrasts_and_contrastive_methods_are_refused_on_one_output(regression, name):
    model, x, _ = regression
    params = dict(PARAMS.get(name, {}), compile=False)
    if name in CONTRASTIVE:
        with pytest.raises(ValueError, match=rf"{name}: .*the model has 1 output \(a regression\)"):
            make_analyzer(model, name, **params)
        return
    analyzer = make_analyzer(model, name, **params)
    for target in ("predicted-vs-mean", "predicted-logodds", "predicted-vs-0"):
        with pytest.raises(ValueError, match=rf"{name}: target '{target}' contrasts classes, but the model has 1 output"):
            analyzer.explain(x, target=target)

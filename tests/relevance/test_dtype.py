"""The engine computes in the model's float type: float32, or float64 for a model built under the
float64 dtype policy (the dense-reference tests rely on it), with the same maps up to round-off."""

import keras
import numpy as np
import pytest

from brainage.relevance import METHODS, make_analyzer

from .nets import float64_policy, float64_twin, randomize_batch_norm, small_chain

PARAMS = {"gradcam": {"layer": "conv_b"}, "integrated_gradients": {"steps": 3},
          "smoothgrad": {"samples": 2}, "smoothgrad_x_input": {"samples": 2}}


@pytest.fixture(scope="module")
def nets():
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 1.0, (2, 9, 8, 1)).astype("float32")
    model = randomize_batch_norm(small_chain(seed=2), rng, x)
    return model, float64_twin(model), x


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_float64_model_is_explained_in_float64_and_agrees_with_float32(nets, method):
    model, twin, x = nets
    target = "all" if method in ("clrp", "sglrp") else "predicted-vs-mean"
    target = "predicted" if method == "dtd_seed" else target
    single = make_analyzer(model, method, compile=False, **PARAMS.get(method, {})).explain(x, target=target)
    double = make_analyzer(twin, method, compile=False, **PARAMS.get(method, {})).explain(x, target=target)
    assert single.maps.dtype == np.float32 and double.maps.dtype == np.float64
    assert double.outputs.dtype == np.float64
    scale = np.abs(double.maps).max()
    np.testing.assert_allclose(single.maps, double.maps, rtol=1e-3, atol=1e-4 * scale)


def test_steps_keep_the_weights_in_the_model_type_even_after_the_policy_is_restored(nets):
    _, twin, x = nets
    analyzer = make_analyzer(twin, "lrp_composite", bn_mode="canonize")  # compiled, outside the policy
    assert keras.config.floatx() == "float32"
    for step in analyzer.steps:
        for array in (step.kernel, step.bias, step.scale, step.shift):
            assert array is None or array.dtype == np.float64, step.name
    assert analyzer.explain(x).maps.dtype == np.float64


def test_a_constant_factor_in_a_float64_graph_is_float64(rng):
    with float64_policy():
        inputs = keras.Input((5, 4, 1))
        hidden = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inputs)
        outputs = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(hidden * 2.0))
        model = keras.Model(inputs, outputs)
    analyzer = make_analyzer(model, "dtd", compile=False)
    affine = [s for s in analyzer.steps if s.kind == "affine"]
    assert len(affine) == 1 and np.asarray(affine[0].scale).dtype == np.float64
    explanation = analyzer.explain(rng.uniform(size=(2, 5, 4, 1)))
    assert explanation.maps.dtype == np.float64

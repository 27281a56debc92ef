"""DeepLIFT-Rescale and DTD rooted at a reference: against explicit float64 references, and
completeness (ΣR = f(x) − f(x_ref)) layer by layer."""

import keras
import numpy as np
import pytest

from brainage.relevance import DeepLiftAnalyzer, ReferenceDTDAnalyzer, make_analyzer

from . import dense_chain
from .nets import float64_twin, randomize_batch_norm, small_chain, trained_small_chain

METHODS = ["deeplift", "dtd_reference"]
TARGETS = ["predicted", "predicted-vs-mean", "predicted-vs-runnerup", "all-vs-2"]


# float64 twins (the same weights): the float64 references measure the rules, not float32 round-off.
@pytest.fixture(scope="module")
def random_net():
    rng = np.random.default_rng(31)
    x = rng.uniform(0.0, 1.0, (6, 9, 8, 1)).astype("float32")
    x64 = x.astype(np.float64)
    return float64_twin(randomize_batch_norm(small_chain(seed=8), rng, x)), x64[:3], x64.mean(axis=0)


@pytest.fixture(scope="module")
def trained_net():
    model, x, _ = trained_small_chain(np.random.default_rng(12))
    x64 = x.astype(np.float64)
    return float64_twin(model), x64[:4], x64.mean(axis=0)


def _reference_maps(model, method, explanation, x, reference, target):
    """The float64 map and explained difference of every (class, input)."""
    ops = dense_chain.chain_ops(model)
    contrast = None if "-vs-" not in target else target.split("-vs-")[1]
    contrast = int(contrast) if contrast and contrast.isdigit() else contrast
    targets = np.atleast_2d(explanation.target)
    others = np.atleast_2d(explanation.contrast)
    maps, values, sums = np.zeros((*targets.shape, x[0].size)), np.zeros(targets.shape), {}
    ref = np.broadcast_to(reference, x.shape[1:]).reshape(-1).astype(np.float64)
    for (t, i), c in np.ndenumerate(targets):
        xi = x[i].reshape(-1).astype(np.float64)
        z, z_ref = dense_chain.forward(ops, xi)[0][-1], dense_chain.forward(ops, ref)[0][-1]
        other = others[t, i] if contrast == "runnerup" else contrast
        value, virtual, _ = dense_chain.contrast_top(z, int(c), other)
        value_ref, _, _ = dense_chain.contrast_top(z_ref, int(c), other)
        if method == "deeplift":
            column = np.eye(len(z))[c] if virtual is None else virtual[:, 0]
            maps[t, i], s = dense_chain.deeplift(ops, xi, ref, column)
        else:
            maps[t, i], s = dense_chain.dtd_reference(ops, xi, ref, [value - value_ref], virtual if virtual is not None
                                                      else np.eye(len(z))[c][:, None])
        values[t, i] = value - value_ref
        for name, total in s.items():
            sums.setdefault(name, np.zeros(targets.shape))[t, i] = total
    return maps, values, sums


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("net", ["random_net", "trained_net"])
def test_matches_dense_reference_and_is_complete_layer_by_layer(net, method, target, request):
    model, x, mean_image = request.getfixturevalue(net)
    for reference in (mean_image, 0.0):
        explanation = make_analyzer(model, method, reference=reference, compile=False).explain(x, target=target)
        maps, values, sums = _reference_maps(model, method, explanation, x, reference, target)
        scale = np.abs(maps).max()
        engine = explanation.maps.reshape(maps.shape)
        np.testing.assert_allclose(engine, maps, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(explanation.outputs, values.reshape(explanation.outputs.shape), rtol=1e-5,
                                   atol=1e-6 * np.abs(values).max())
        for name, expected in sums.items():
            np.testing.assert_allclose(explanation.trace[name], expected.reshape(explanation.outputs.shape),
                                       rtol=1e-5, atol=1e-6 * np.abs(values).max(), err_msg=name)
        # Completeness: ΣR = f(x) − f(x_ref) at every layer (no sinks: biases cancel), to 1e-5 of
        # the larger of |f(x)| and |f(x_ref)|: float32 round-off scales with the ends, not with
        # their difference. A trained-net sample with f = 0.894 and f(x_ref) = 0.915 explains
        # −0.020; its 6e-7 of round-off is 3e-5 of that difference on a 2-core CI run (3e-6 here),
        # so a tolerance relative to the difference alone failed by thread timing.
        ends = np.maximum(np.abs(explanation.outputs + explanation.extras["reference_outputs"]),
                          np.abs(explanation.extras["reference_outputs"]))
        tolerance = 1e-5 * ends
        for layer, total in {**explanation.trace, "input": explanation.relevance_sum}.items():
            err = np.abs(total.astype(np.float64) - explanation.outputs)
            assert np.all(err <= tolerance), (layer, err, tolerance)
        logits = np.asarray(model(x))
        reference_logits = np.asarray(model(np.broadcast_to(reference, x.shape[1:])[None]))
        if target == "predicted":
            rows = np.arange(len(x))
            np.testing.assert_allclose(explanation.extras["reference_outputs"], reference_logits[0, explanation.target],
                                       rtol=1e-5)
            np.testing.assert_allclose(explanation.outputs, logits[rows, explanation.target]
                                       - reference_logits[0, explanation.target], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_batch_norm_is_exact_either_way_and_reference_equal_to_input_explains_nothing(method, random_net):
    model, x, mean_image = random_net
    passthrough = make_analyzer(model, method, reference=mean_image, compile=False).explain(x)
    canonize = make_analyzer(model, method, reference=mean_image, bn_mode="canonize", compile=False).explain(x)
    np.testing.assert_allclose(passthrough.maps, canonize.maps, rtol=1e-4, atol=1e-6 * np.abs(canonize.maps).max())
    same = make_analyzer(model, method, compile=False).explain(x[:1], reference=x[0])
    np.testing.assert_array_equal(same.maps, 0.0)
    np.testing.assert_array_equal(same.outputs, 0.0)


def test_deeplift_of_a_linear_model_is_weights_times_difference(rng):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    x = rng.normal(size=(2, 5)).astype("float32")
    reference = rng.normal(size=5).astype("float32")
    for method in METHODS:
        explanation = make_analyzer(model, method, reference=reference, compile=False).explain(x, target=1)
        if method == "deeplift":  # a linear model: the exact contributions w_i1 (x_i − x_ref,i)
            np.testing.assert_allclose(explanation.maps, (x - reference) * model.layers[0].get_weights()[0][:, 1],
                                       rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(explanation.relevance_sum, explanation.outputs, rtol=1e-5)


def test_per_call_reference_and_reference_errors(trained_net):
    model, x, mean_image = trained_net
    analyzer = DeepLiftAnalyzer(model, compile=False)
    np.testing.assert_array_equal(analyzer.reference, 0.0)
    np.testing.assert_array_equal(analyzer.explain(x, reference=mean_image).maps,
                                  DeepLiftAnalyzer(model, reference=mean_image, compile=False).explain(x).maps)
    with pytest.raises(ValueError, match=r"deeplift: reference of shape \(3, 3\) does not broadcast to one input of shape \(9, 8, 1\)"):
        analyzer.explain(x, reference=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="has more axes than one input"):
        DeepLiftAnalyzer(model, reference=np.zeros((2, 9, 8, 1)))
    for cls, name in ((DeepLiftAnalyzer, "deeplift"), (ReferenceDTDAnalyzer, "dtd_reference")):
        with pytest.raises(ValueError, match=f"{name}: target 'predicted-logodds': the log-odds are not linear"):
            cls(model, compile=False).explain(x, target="predicted-logodds")

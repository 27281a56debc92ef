"""Conservation and completeness errors: the identity each method obeys, on models with known sums."""
import numpy as np
import pytest

from brainage.faithfulness.conservation import (
    OUTPUT,
    REFERENCE,
    conservation_errors,
    identity_of,
    reference_outputs,
)


@pytest.fixture(scope="module")
def linear_model():
    """Flatten → Dense(3) with a bias: f_k(x) = w_k · x + b_k, so every gradient is constant."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 5, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    model.layers[-1].bias.assign(np.array([0.7, -1.3, 2.0], np.float32))
    return model


def test_integrated_gradients_completeness_is_measured_against_f_x_minus_f_reference(
        linear_model, rng):
    from brainage.relevance import make_analyzer

    x = rng.uniform(0, 1, (4, 4, 5, 1)).astype(np.float32)
    classes = np.array([0, 2, 1, 2])
    for baseline in (0.0, 0.3):
        analyzer = make_analyzer(linear_model, "integrated_gradients", steps=4, baseline=baseline)
        assert identity_of(analyzer) == REFERENCE
        explanation = analyzer.explain(x, target="true", labels=classes)
        reference = reference_outputs(analyzer, "true", classes)
        x0 = np.full((1, 4, 5, 1), baseline, np.float32)
        expected = np.asarray(linear_model(x0))[0, classes]
        np.testing.assert_allclose(reference, expected, rtol=1e-5)
        errors = conservation_errors(REFERENCE, explanation, reference)
        assert errors.max() < 1e-5  # linear: IG is exact, ΣR = f(x) − f(x0)
        # Against f(x) alone the bias and the baseline's output look like a leak.
        assert np.nanmin(explanation.rel_error) > 1e-2


def test_layerwise_maps_use_the_engines_error_and_gradients_have_no_identity(rng):
    import keras

    from brainage.relevance import make_analyzer

    keras.utils.set_random_seed(2)
    model = keras.Sequential([
        keras.Input((6, 5, 1)), keras.layers.Conv2D(3, 3, activation="relu", use_bias=False),
        keras.layers.Flatten(), keras.layers.Dense(4, activation="relu", use_bias=False),
        keras.layers.Dense(2, use_bias=False)])
    x = rng.uniform(0, 1, (3, 6, 5, 1)).astype(np.float32)
    dtd = make_analyzer(model, "dtd")
    assert identity_of(dtd) == OUTPUT
    explanation = dtd.explain(x, target="predicted")
    errors = conservation_errors(OUTPUT, explanation)
    np.testing.assert_array_equal(errors, explanation.rel_error)
    assert np.nanmax(errors) < 1e-5
    for name in ("gradient", "gradient_x_input", "guided_backprop"):
        analyzer = make_analyzer(model, name)
        assert identity_of(analyzer) is None
        assert np.isnan(conservation_errors(None, analyzer.explain(x))).all()


def test_methods_that_report_their_reference_output_are_taken_at_their_word():
    from types import SimpleNamespace

    explanation = SimpleNamespace(outputs=np.array([2.0, -1.0]), rel_error=np.array([1e-7, 0.5]),
                                  relevance_sum=np.array([9.0, 9.0]),
                                  extras={"reference_outputs": np.array([1.0, 1.0])})
    np.testing.assert_array_equal(conservation_errors(REFERENCE, explanation), [1e-7, 0.5])

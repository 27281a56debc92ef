"""SmoothGrad and SmoothGrad × input: the mean gradient over seeded noisy copies, batched."""

import numpy as np
import pytest

from brainage.relevance import GradientAnalyzer, SmoothGradAnalyzer, make_analyzer

from .nets import trained_small_chain


@pytest.fixture(scope="module")
def net():
    model, x, _ = trained_small_chain(np.random.default_rng(51))
    return model, x[:3]


def _mean_gradient_by_hand(model, x, noise, chosen, contrast=None):
    gradient = GradientAnalyzer(model, compile=False)
    total = np.zeros_like(x, dtype=np.float64)
    for copy in noise:
        every = gradient.explain(x + copy, target="all", contrast=contrast).maps  # (class, batch, ...)
        total += every[chosen, np.arange(len(x))]
    return total / len(noise)


@pytest.mark.slow
def test_mean_gradient_over_the_documented_noise(net):
    model, x = net
    analyzer = SmoothGradAnalyzer(model, noise_level=0.2, samples=5, batch_size=4, seed=3, compile=False)
    explanation = analyzer.explain(x)
    noise = np.concatenate(list(analyzer.noise(x)))
    assert noise.shape == (5, *x.shape)
    ranges = x.reshape(len(x), -1).max(1) - x.reshape(len(x), -1).min(1)
    np.testing.assert_allclose(noise.std(axis=(0, 2, 3, 4)), 0.2 * ranges, rtol=0.15)
    np.testing.assert_array_equal(explanation.target, np.asarray(model(x)).argmax(1))
    expected = _mean_gradient_by_hand(model, x, noise, explanation.target)
    np.testing.assert_allclose(explanation.maps, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(explanation.outputs, np.asarray(model(x)).max(1), rtol=1e-5)
    times_input = SmoothGradAnalyzer(model, noise_level=0.2, samples=5, batch_size=4, seed=3, times_input=True,
                                     compile=False).explain(x)
    assert times_input.method == "smoothgrad_x_input"
    np.testing.assert_allclose(times_input.maps, explanation.maps * x, rtol=1e-6, atol=1e-9)


def test_batching_does_not_change_the_maps_and_the_seed_does(net):
    model, x = net
    maps = [SmoothGradAnalyzer(model, samples=7, batch_size=b, seed=1, compile=False).explain(x).maps for b in (1, 5, 64)]
    for other in maps[1:]:
        np.testing.assert_allclose(other, maps[0], rtol=1e-5, atol=1e-7 * np.abs(maps[0]).max())
    again = SmoothGradAnalyzer(model, samples=7, batch_size=5, seed=1, compile=False).explain(x).maps
    np.testing.assert_array_equal(again, maps[1])
    other_seed = SmoothGradAnalyzer(model, samples=7, batch_size=5, seed=2, compile=False).explain(x).maps
    assert not np.allclose(other_seed, maps[1])


def test_without_noise_it_is_the_gradient_and_contrasts_apply(net):
    model, x = net
    plain = make_analyzer(model, "smoothgrad", noise_level=0.0, samples=2, compile=False).explain(x, target="predicted-vs-mean")
    gradient = GradientAnalyzer(model, compile=False).explain(x, target="predicted-vs-mean")
    np.testing.assert_allclose(plain.maps, gradient.maps, rtol=1e-5, atol=1e-8)
    assert plain.target_mode == "predicted-vs-mean"
    np.testing.assert_allclose(plain.outputs, gradient.outputs, rtol=1e-6)


def test_smoothgrad_of_the_log_odds(net):
    model, x = net
    analyzer = SmoothGradAnalyzer(model, samples=3, batch_size=6, seed=4, compile=False)
    explanation = analyzer.explain(x, contrast="logodds")
    noise = np.concatenate(list(analyzer.noise(x)))
    expected = _mean_gradient_by_hand(model, x, noise, explanation.target, contrast="logodds")
    np.testing.assert_allclose(explanation.maps, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize(("params", "message"), [({"noise_level": -0.1}, "noise_level must be ≥ 0"),
                                                 ({"samples": 0}, "samples must be ≥ 1"),
                                                 ({"batch_size": 0}, "batch_size must be ≥ 1")])
def test_bad_settings_are_clear_errors(net, params, message):
    with pytest.raises(ValueError, match=f"smoothgrad: {message}"):
        SmoothGradAnalyzer(net[0], **params)

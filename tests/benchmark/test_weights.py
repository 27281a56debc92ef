"""Random biases and BatchNormalization statistics that matter yet leave the network alive; trained models."""
import numpy as np
import pytest

from brainage.benchmark.weights import BN_BETA, BN_GAMMA, load_trained, randomize_statistics
from brainage.errors import ModelError
from brainage.model import build_model

SHAPE = (20, 22, 19)


@pytest.fixture
def randomized(rng):
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(SHAPE, widths=(2, 4), dense_units=8)
    randomize_statistics(model, rng)
    return model


def test_every_batch_norm_and_bias_is_moved_off_keras_initialisation(randomized):
    import keras

    norms = [layer for layer in randomized.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 2
    for layer in norms:
        gamma, beta, mean, variance = (keras.ops.convert_to_numpy(v) for v in
                                       (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance))
        assert np.all((gamma >= BN_GAMMA[0]) & (gamma <= BN_GAMMA[1]))
        assert np.all((beta >= BN_BETA[0]) & (beta <= BN_BETA[1])) and np.all(variance > 0)
        assert not np.allclose(mean, 0) and not np.allclose(variance, 1)
        # BN turns positive only above a positive linear output (see randomize_statistics)
        assert np.all(mean >= beta * np.sqrt(variance + layer.epsilon) / gamma - 1e-6)
    biased = [layer for layer in randomized.layers if getattr(layer, "use_bias", False)]
    assert len(biased) == 6  # four convolutions, two dense layers
    assert all(np.any(keras.ops.convert_to_numpy(layer.bias) != 0) for layer in biased)


def test_the_randomized_network_stays_alive_and_dtd_conserves(randomized, rng):
    from brainage.relevance import make_analyzer

    x = rng.uniform(0, 1, (3, *SHAPE, 1)).astype("float32")
    explanation = make_analyzer(randomized, "dtd").explain(x)
    assert np.all(np.abs(explanation.outputs) > 1e-3)  # relevance starts from a live logit
    assert explanation.max_rel_error < 1e-5
    assert np.all(np.abs(explanation.maps).reshape(3, -1).sum(1) > 0)


def test_a_saved_model_loads_and_a_non_volume_model_is_refused(randomized, tmp_path):
    import keras

    randomized.save(tmp_path / "volume.keras")
    assert load_trained(tmp_path / "volume.keras").input_shape == (None, *SHAPE, 1)
    flat = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    flat.save(tmp_path / "flat.keras")
    with pytest.raises(ModelError, match=r"takes inputs \(5,\)"):
        load_trained(tmp_path / "flat.keras")
    (tmp_path / "broken.keras").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load model_path"):
        load_trained(tmp_path / "broken.keras")

"""The Keras network rebuilt in PyTorch: same logits, channels and flatten order translated."""
import numpy as np
import pytest

from brainage.benchmark.weights import randomize_statistics
from brainage.errors import ModelError
from brainage.model import build_model

# Uneven, so that after two blocks the flattened grid (2, 3, 4) x 4 channels has distinct axes.
SHAPE = (23, 26, 29)


@pytest.fixture
def torch(peer_extra):
    return peer_extra("torch")


@pytest.mark.slow
def test_logits_match_keras_with_random_batch_norm_and_biases(torch, rng):
    import keras

    from brainage.benchmark.torch_network import channels_first, torch_network

    keras.utils.set_random_seed(0)
    model = build_model(SHAPE, widths=(2, 4), dense_units=8)
    randomize_statistics(model, rng)
    network = torch_network(model)
    assert [name for name, _ in network.named_children()][:6] == [
        "block1_conv_a", "block1_conv_a_relu", "block1_conv_b", "block1_bn", "block1_relu", "block1_pool"]
    assert network.block1_bn.eps == pytest.approx(1e-3)  # Keras's epsilon, not PyTorch's 1e-5
    x = rng.uniform(0, 1, (3, *SHAPE, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    with torch.inference_mode():
        logits = network(torch.from_numpy(channels_first(x))).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    assert not any(p.requires_grad for p in network.parameters())


def test_a_layer_without_translation_is_named(torch):
    import keras

    model = keras.Sequential([keras.Input((8, 8, 8, 1)), keras.layers.Conv3D(2, 3, name="conv"),
                              keras.layers.MaxPooling3D(2, name="maxpool"), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    from brainage.benchmark.torch_network import torch_network

    with pytest.raises(ModelError, match=r"layer 'maxpool' \(MaxPooling3D\) has no PyTorch translation"):
        torch_network(model)

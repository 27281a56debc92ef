"""The U-Net: builds on uneven tiny boxes, a per-voxel logit, no biases by default, round trip, trains."""
import keras
import numpy as np
import pytest

from brainage.segmentation.network import bce_dice_loss, build_unet, train_unet


@pytest.mark.parametrize("pool", ["average", "max"])
def test_the_unet_is_a_functional_graph_with_a_per_voxel_logit(pool):
    model = build_unet((12, 16, 8, 1), (2, 3, 4), pool=pool)
    assert model.output_shape == (None, 12, 16, 8, 1)
    names = [layer.name for layer in model.layers]
    for name in ("enc1_conv1", "enc2_pool", "bottom_conv2", "dec2_up", "dec2_skip", "dec1_conv2", "logits"):
        assert name in names
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"UpSampling3D", "Concatenate", "AveragePooling3D" if pool == "average" else "MaxPooling3D"} <= kinds
    assert all(not getattr(layer, "use_bias", False) for layer in model.layers)
    assert any(layer.use_bias for layer in build_unet((4, 4, 4, 1), (2, 2), use_bias=True).layers
               if hasattr(layer, "use_bias"))


def test_saved_and_loaded_the_unet_gives_the_same_logits(tmp_path, rng):
    model = build_unet((8, 6, 4, 1), (2, 3))
    x = rng.uniform(0, 1, (2, 8, 6, 4, 1)).astype("float32")
    model.save(tmp_path / "unet.keras")
    loaded = keras.models.load_model(tmp_path / "unet.keras", compile=False)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


@pytest.mark.slow
def test_the_loss_is_small_for_a_confident_right_answer_and_training_lowers_it(rng):
    y = np.zeros((2, 4, 4, 4, 1), "float32")
    y[:, 1:3, 1:3, 1:3] = 1
    good = float(bce_dice_loss(y, (y * 2 - 1) * 20))
    bad = float(bce_dice_loss(y, -(y * 2 - 1) * 20))
    assert good < 0.01 and bad > 1.5
    keras.utils.set_random_seed(0)
    x = rng.uniform(0, 0.3, (4, 8, 4, 4, 1)).astype("float32")
    labels = np.zeros((4, 8, 4, 4), np.uint8)
    labels[:, 2:6, 1:3, 1:3] = 1
    x[labels.astype(bool)] += 0.6
    history = train_unet(build_unet(x.shape[1:], (4, 4)), x, labels, epochs=3, batch_size=2,
                         learning_rate=1e-2)
    assert history["loss"][-1] < history["loss"][0]

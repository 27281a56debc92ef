"""The Taylor 2019 network: exact size, layer names, small-input errors, .keras round trip (the
residual network is tested in tests/model/test_resnet3d.py)."""
import numpy as np
import pytest
from omegaconf import OmegaConf

from brainage.errors import ModelError
from brainage.model import (
    SEED_INPUT_SHAPE,
    ModelSettings,
    build_model,
    feature_shape,
    minimum_input_size,
    model_from_config,
)
from tests.builders import CONFIGS

TINY = (20, 22, 19)


def _count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


def test_full_size_matches_seed_parameter_count():
    model = build_model()
    assert model.count_params() == 253_291
    assert _count(model.non_trainable_weights) == 240
    assert model.output_shape == (None, 3)
    # The seed's layer table (section 3.1): shapes after each block.
    assert model.get_layer("block1_conv_b").output.shape[1:] == (96, 120, 100, 8)
    assert model.get_layer("block4_pool").output.shape[1:] == (2, 4, 2, 64)
    assert model.get_layer("flatten").output.shape[1:] == (1024,)


def test_layer_names_are_stable():
    model = build_model(TINY, widths=(2, 4))
    expected = ["input"]
    for b in (1, 2):
        expected += [f"block{b}_{part}" for part in ("conv_a", "conv_b", "bn", "relu", "pool")]
    expected += ["flatten", "dense1", "logits"]
    assert [layer.name for layer in model.layers] == expected
    assert model.get_layer("block1_conv_a").get_config()["activation"] == "relu"
    assert model.get_layer("block1_conv_b").get_config()["activation"] == "linear"
    assert model.get_layer("block1_conv_a").get_config()["padding"] == "valid"
    assert model.get_layer("logits").get_config()["activation"] == "linear"
    assert model.get_layer("dense1").get_config()["activation"] == "relu"


def test_fewer_blocks_and_uneven_input():
    model = build_model((20, 22, 19, 1), widths=(2, 4), dense_units=5, n_classes=4)
    assert feature_shape(TINY, 2) == ((8, 9, 7), (2, 2, 1))
    assert model.get_layer("flatten").output.shape[1:] == (2 * 2 * 1 * 4,)
    assert model.output_shape == (None, 4)


def test_too_small_input_is_a_clear_error():
    assert minimum_input_size(4) == 76
    with pytest.raises(ModelError, match=r"too small for 4 blocks.*at least 76 voxels"):
        build_model((75, 124, 104, 1))
    build_model((76, 76, 76, 1), widths=(1, 1, 1, 1))
    with pytest.raises(ValueError, match="widths"):
        build_model(TINY, widths=())


def test_keras_round_trip_gives_identical_outputs(tmp_path, rng):
    import keras

    model = build_model(TINY, widths=(2, 4), bn_momentum=0.9)
    # Non-trivial batch-norm statistics, so the saved moving mean/variance matter.
    for b in (1, 2):
        bn = model.get_layer(f"block{b}_bn")
        bn.moving_mean.assign(rng.normal(0, 0.1, bn.moving_mean.shape).astype("float32"))
        bn.moving_variance.assign(rng.uniform(0.5, 2, bn.moving_variance.shape).astype("float32"))
    x = rng.uniform(0, 1, (3,) + TINY + (1,)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.get_layer("block1_bn").get_config()["momentum"] == 0.9


def test_model_from_config_follows_the_data_bins():
    cfg = OmegaConf.create({"name": "t", "widths": [2, 4], "kernel_size": 3, "dense_units": 8,
                            "n_classes": None, "pool_size": 2, "bn_momentum": 0.99})
    assert model_from_config(cfg, TINY + (1,), n_classes=4).output_shape == (None, 4)
    cfg.n_classes = 3
    with pytest.raises(ValueError, match="model.n_classes=3 but the data has 4 age bins"):
        model_from_config(cfg, TINY + (1,), n_classes=4)
    cfg.n_classes = None
    with pytest.raises(ModelError, match="model.n_classes is null and no class count"):
        model_from_config(cfg, TINY + (1,))


def test_the_config_builds_the_seed_network():
    settings = ModelSettings.from_cfg(OmegaConf.load(CONFIGS / "model" / "taylor2019.yaml"))
    model = settings.build(SEED_INPUT_SHAPE, n_classes=3)
    assert model.count_params() == 253_291 and model.name == "taylor2019"
    assert model.get_layer("block1_bn").get_config()["momentum"] == 0.99
    incomplete = OmegaConf.load(CONFIGS / "model" / "taylor2019.yaml")
    del incomplete["widths"]
    with pytest.raises(ModelError, match="model.widths is missing"):  # no default hidden in the code
        ModelSettings.from_cfg(incomplete)


def test_mixed_precision_keeps_logits_float32():
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_model(TINY, widths=(2, 4))
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("block1_conv_a").compute_dtype == "float16"
    assert model.get_layer("logits").compute_dtype == "float32"
    assert model.get_layer("block1_conv_a").kernel.dtype == "float32"

"""The residual network (model=resnet3d): names, round trip, one epoch of the training stage,
explained."""
import numpy as np
import pytest
from omegaconf import OmegaConf

from brainage.errors import ModelError
from brainage.model import ModelSettings, build_resnet3d
from tests.builders import CONFIGS, TINY_MODEL, compose_train, tiny_data

TINY = (20, 22, 19)


@pytest.mark.slow
def test_resnet3d_layer_names_shapes_and_round_trip(tmp_path, rng):
    import keras

    model = build_resnet3d(TINY, widths=(2, 4, 4), dense_units=8, bn_momentum=0.9)
    names = [layer.name for layer in model.layers]
    for b in (1, 2, 3):
        assert {f"block{b}_conv_a", f"block{b}_conv_b", f"block{b}_bn", f"block{b}_add",
                f"block{b}_relu"} <= set(names)
    assert "block2_shortcut" in names and "block1_shortcut" not in names  # only where width changes
    assert "block3_pool" not in names and names[-3:] == ["global_pool", "dense1", "logits"]
    assert model.get_layer("block2_add").output.shape[1:] == (9, 10, 8, 4)  # stem 18x20x17, pooled
    x = rng.uniform(0, 1, (2,) + TINY + (1,)).astype("float32")
    model.save(tmp_path / "resnet.keras")
    loaded = keras.saving.load_model(tmp_path / "resnet.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ModelError, match="too small for resnet3d with 3 blocks.*at least 6"):
        build_resnet3d((5, 30, 30), widths=(2, 4, 4))


def test_model_architecture_is_checked():
    cfg = OmegaConf.load(CONFIGS / "model" / "resnet3d.yaml")
    assert ModelSettings.from_cfg(cfg).architecture == "resnet3d"
    cfg.architecture = "vgg"
    with pytest.raises(ModelError, match="model.architecture='vgg'; expected one of taylor2019, resnet3d"):
        ModelSettings.from_cfg(cfg)


@pytest.mark.slow
def test_resnet3d_trains_one_epoch_and_dtd_explains_it(tmp_path):
    import keras

    from brainage.relevance import make_analyzer
    from brainage.train import train

    cfg = compose_train("model=resnet3d", *TINY_MODEL, "trainer.epochs=1", tiny=False)
    metrics = train(cfg, run_dir=tmp_path, data=tiny_data())
    assert metrics["epochs_run"] == 1
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.name == "resnet3d" and model.get_layer("block2_add") is not None
    x = tiny_data().volumes[:2, ..., None]
    e = make_analyzer(model, "dtd", bn_mode="canonize").explain(x)
    assert "block2_add" in e.trace and np.nanmax(e.books_rel_error) <= 1e-5

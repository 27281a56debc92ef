"""SFCN (model=sfcn, Peng et al. 2021): layer names, shapes, the paper's size, .keras round trip,
small-grid and option errors; one epoch of the training stage (classification and regression),
then every method of the explainer registry on the trained network, conserving where it should."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from brainage.errors import ModelError
from brainage.model import ModelSettings, build_sfcn, fold_age_head
from tests.builders import CONFIGS, TINY_MODEL, compose_train, tiny_data

TINY = (20, 22, 19)
# model.widths=[2,4] (TINY_MODEL): one pooling block, then the 1x1x1 block; sfcn has no dense1.
SFCN_TINY = ["model=sfcn", *TINY_MODEL, "model.dense_units=null", "trainer.epochs=1"]
PARAMS = {"gradcam": {"layer": "block1_relu"}, "integrated_gradients": {"steps": 2},
          "smoothgrad": {"samples": 2}, "smoothgrad_x_input": {"samples": 2}}
# Complete by construction: every node's sum is f(x) - f(x_ref). The layer-wise methods' books
# balance instead (relevance plus what each layer absorbed: biases, dead units).
COMPLETE = {"deeplift", "dtd_reference"}
BALANCED = {"dtd", "dtd_w2", "dtd_seed", "lrp_composite", "epsilon_plus"}  # CLRP/SGLRP clip or contrast


@pytest.mark.slow
def test_layer_names_shapes_paper_size_and_round_trip(tmp_path, rng):
    import keras

    model = build_sfcn(TINY, widths=(2, 4, 3), n_classes=4, bn_momentum=0.9)
    expected = ["input"]
    for b in (1, 2):
        expected += [f"block{b}_{part}" for part in ("conv", "bn", "pool", "relu")]
    expected += ["block3_conv", "block3_bn", "block3_relu", "global_pool", "dropout", "logits"]
    assert [layer.name for layer in model.layers] == expected
    assert model.get_layer("block2_relu").output.shape[1:] == (5, 5, 4, 4)  # two poolings, floor
    assert model.get_layer("block3_conv").get_config()["kernel_size"] == (1, 1, 1)
    assert model.get_layer("block1_conv").get_config()["padding"] == "same"
    assert model.output_shape == (None, 4)
    assert build_sfcn().count_params() == 2_952_131  # the paper's channels: "about 3 million"
    x = rng.uniform(0, 1, (2,) + TINY + (1,)).astype("float32")
    model.save(tmp_path / "sfcn.keras")
    loaded = keras.saving.load_model(tmp_path / "sfcn.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_small_grids_and_bad_options_are_clear_errors():
    with pytest.raises(ModelError, match=r"too small for sfcn with 5 pooling blocks: every axis needs at least 32"):
        build_sfcn(TINY, widths=(2, 2, 2, 2, 2, 2))
    with pytest.raises(ModelError, match="sfcn needs at least two widths"):
        build_sfcn(TINY, widths=(4,))
    with pytest.raises(ModelError, match=r"dropout must be in \[0, 1\), got 1.0"):
        build_sfcn(TINY, widths=(2, 4), dropout=1.0)
    cfg = OmegaConf.load(CONFIGS / "model" / "sfcn.yaml")
    settings = ModelSettings.from_cfg(cfg)
    assert settings.architecture == "sfcn" and settings.widths == (8, 16, 32, 32, 32, 16)
    assert settings.dense_units is None and settings.dropout == 0.5
    assert settings.build((32, 40, 33), n_classes=3).output_shape == (None, 3)  # the default fits 32 voxels
    cfg.dense_units = 8
    with pytest.raises(ModelError, match="model.dense_units=8: model.architecture=sfcn does not take it"):
        ModelSettings.from_cfg(cfg)
    taylor = OmegaConf.load(CONFIGS / "model" / "taylor2019.yaml")
    taylor.dropout = 0.3
    with pytest.raises(ModelError, match="model.dropout=0.3: model.architecture=taylor2019 does not take it"):
        ModelSettings.from_cfg(taylor)


def test_regression_head_is_the_shared_age_head():
    cfg = OmegaConf.load(CONFIGS / "model" / "sfcn.yaml")
    cfg.task, cfg.widths = "regression", [2, 4]
    model = ModelSettings.from_cfg(cfg).build(TINY, age_scale=(50.0, 10.0))
    assert [layer.name for layer in model.layers][-3:] == ["dropout", "age_standardised", "age"]
    folded = fold_age_head(model)
    x = np.random.default_rng(0).uniform(0, 1, (2,) + TINY + (1,)).astype("float32")
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


@pytest.fixture(scope="module")
def trained_sfcn(tmp_path_factory):
    """The classifier after one epoch of the training stage, and two test volumes."""
    import keras

    from brainage.train import train

    run = tmp_path_factory.mktemp("sfcn")
    metrics = train(compose_train(*SFCN_TINY, tiny=False), run_dir=run, data=tiny_data())
    assert metrics["epochs_run"] == 1
    model = keras.saving.load_model(run / "model.keras")
    return model, tiny_data().volumes[:2, ..., None].astype("float32")


@pytest.mark.slow  # ~15 s: one epoch of the regression stage
def test_regression_trains_one_epoch(tmp_path):
    import keras

    from brainage.train import train

    train(compose_train(*SFCN_TINY, "model.task=regression", tiny=False), run_dir=tmp_path, data=tiny_data())
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.name == "sfcn" and model.output_shape == (None, 1) and model.layers[-1].name == "age"


@pytest.mark.slow  # ~30 s: one epoch of training, then every method compiled
def test_trained_network_is_explained_by_every_method(trained_sfcn):
    from brainage.relevance import METHODS, make_analyzer

    model, x = trained_sfcn
    assert model.name == "sfcn" and model.get_layer("block1_pool") is not None
    explained = []
    for name in METHODS:
        for params in ({}, {"bn_mode": "canonize"}) if name in ("dtd", "deeplift") else ({},):
            e = make_analyzer(model, name, **PARAMS.get(name, {}), **params).explain(x)
            assert e.maps.shape == x.shape and np.isfinite(e.maps).all(), name
            if name in COMPLETE:
                moved = np.abs(e.outputs) > 1e-3 * np.abs(e.outputs).max()
                for layer, err in e.trace_rel_error().items():
                    assert np.all(err[moved] <= 1e-5), (name, layer, err)
            if name in BALANCED:
                assert "block1_pool" in e.trace and np.nanmax(e.books_rel_error) <= 1e-5, name
            explained.append(name)
    assert set(explained) == set(METHODS)

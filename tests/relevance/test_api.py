"""Public interface: inputs, targets, errors naming the layer, configs, Sequential/Functional."""

from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from brainage.data.reference_images import NAMED_REFERENCES
from brainage.relevance import (
    Composite,
    Epsilon,
    RelevanceAnalyzer,
    ZBox,
    ZPlus,
    analyzer_from_config,
    make_analyzer,
)

from .nets import gm_volume, positive_logit_bias, taylor_net

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "explainer"
SHAPE = (20, 21, 19, 1)


@pytest.fixture(scope="module")
def net():
    rng = np.random.default_rng(3)
    x = gm_volume(rng, SHAPE, batch=2)
    return positive_logit_bias(taylor_net(SHAPE), x), x


def test_wrong_input_shape_is_a_clear_error(net):
    model, x = net
    analyzer = RelevanceAnalyzer(model, "dtd")
    with pytest.raises(ValueError, match=r"does not match the model input \(batch, 20, 21, 19, 1\).*x\[None\]"):
        analyzer.explain(x[0])
    with pytest.raises(ValueError, match="does not match"):
        analyzer.explain(x[:, :-1])


def test_target_errors(net):
    model, x = net
    analyzer = RelevanceAnalyzer(model, "dtd")
    with pytest.raises(ValueError, match="needs labels"):
        analyzer.explain(x, target="true")
    with pytest.raises(ValueError, match="out of range"):
        analyzer.explain(x, target=3)
    with pytest.raises(ValueError, match="target must be"):
        analyzer.explain(x, target="best")
    with pytest.raises(ValueError, match="is a boolean"):
        analyzer.explain(x, target=True)


def test_branching_graph_is_walked_by_every_method_and_gradcam_needs_a_spatial_layer():
    inputs = keras.Input((8,))
    a = keras.layers.Dense(4, name="left")(inputs)
    b = keras.layers.Dense(4, name="right")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Add(name="merge")([a, b])))
    with pytest.raises(ValueError, match="gradcam: layer 'left' is not on the input's spatial grid"):
        make_analyzer(model, "gradcam", layer="left")
    assert RelevanceAnalyzer(model, "dtd").dag is not None  # layer-wise methods walk the graph
    for name in ("deeplift", "dtd_reference"):
        assert make_analyzer(model, name).dag is not None


@pytest.mark.parametrize(
    "layer",
    [keras.layers.LayerNormalization(name="odd"), keras.layers.Activation("sigmoid", name="odd"),
     keras.layers.Dense(4, activation="tanh", name="odd"), keras.layers.LeakyReLU(name="odd")],
    ids=["layer_norm", "sigmoid", "tanh_dense", "leaky_relu"],
)
def test_unsupported_layer_is_rejected_naming_it(layer):
    model = keras.Sequential([keras.Input((6, 6, 1)), layer, keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="'odd'"):
        RelevanceAnalyzer(model, "dtd")


@pytest.mark.slow
def test_final_softmax_is_skipped_and_sequential_equals_functional(rng):
    layers = [keras.layers.Conv2D(3, 3, activation="relu"), keras.layers.MaxPooling2D(2), keras.layers.Dropout(0.5),
              keras.layers.Reshape((-1,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(3)]
    seq = keras.Sequential([keras.Input((9, 8, 1)), *layers])
    inputs = keras.Input((9, 8, 1))
    out = inputs
    for layer in layers:
        out = layer(out)
    functional = keras.Model(inputs, keras.layers.Activation("softmax")(out))
    x = rng.uniform(0, 1, (3, 9, 8, 1)).astype("float32")
    a = RelevanceAnalyzer(seq, "epsilon_plus").explain(x)
    b = RelevanceAnalyzer(functional, "epsilon_plus").explain(x)
    np.testing.assert_allclose(a.maps, b.maps, rtol=1e-6)
    np.testing.assert_allclose(b.outputs, np.asarray(seq(x)).max(axis=1), rtol=1e-6)  # pre-softmax logit


def test_custom_composite_by_name_type_and_position(net):
    model, x = net
    composite = Composite(
        [("dense", Epsilon(0.5)), (keras.layers.Conv3D, ZPlus())], name_map={"block2_*": Epsilon(0.1)}, first=ZBox(0, 1)
    )
    rules = RelevanceAnalyzer(model, composite).rules
    assert isinstance(rules["block1_conv_a"], ZBox)
    assert isinstance(rules["block1_conv_b"], ZPlus)
    assert rules["block2_conv_a"].epsilon == 0.1
    assert rules["dense1"].epsilon == 0.5
    with pytest.raises(ValueError, match="no rule for layer 'dense1'"):
        RelevanceAnalyzer(model, Composite([("conv", ZPlus())]))


def test_preset_layer_assignment(net):
    model, _ = net
    rules = RelevanceAnalyzer(model, "lrp_composite").rules
    assert [type(rules[n]).__name__ for n in ("block1_conv_a", "block1_conv_b", "block2_conv_a", "dense1", "logits")] == [
        "ZBox", "Gamma", "Epsilon", "LRP0", "LRP0"]


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_explainer_config_builds_and_explains(path, net):
    from omegaconf import OmegaConf

    model, x = net
    cfg = yaml.safe_load(path.read_text())
    assert "name" in cfg
    if cfg["name"] == "gradcam":
        assert cfg["layer"] == "block4_conv_b"
        cfg["layer"] = "block2_conv_b"  # the test net has two blocks
    if cfg["name"] == "integrated_gradients":
        cfg["steps"] = 2
    if cfg["name"].startswith("smoothgrad"):
        cfg["samples"] = 2
    if cfg.get("reference") in NAMED_REFERENCES:  # the stages put the cohort's image there
        assert cfg["reference"] == "youngest_mean"
        cfg["reference"] = np.full(x.shape[1:], 0.3, np.float32)
    analyzer = analyzer_from_config(model, OmegaConf.create(cfg) if "reference" not in cfg else cfg)
    assert analyzer.method == cfg["name"]
    explanation = analyzer.explain(x)
    assert explanation.maps.shape == x.shape and explanation.maps.dtype == np.float32
    assert explanation.outputs.shape == explanation.rel_error.shape == explanation.negative_share.shape == (2,)


def test_bad_config_is_a_clear_error(net):
    model, _ = net
    with pytest.raises(ValueError, match="unknown explainer 'lrp9'"):
        analyzer_from_config(model, {"name": "lrp9"})
    with pytest.raises(TypeError, match="'gradient'.*bad parameters"):
        make_analyzer(model, "gradient", layer="x")

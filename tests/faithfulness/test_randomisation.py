"""Cascading parameter randomisation and map similarity on a small CNN."""
import numpy as np
import pandas as pd
import pytest

from brainage import faithfulness as ff


@pytest.fixture(scope="module")
def small_cnn():
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((10, 9, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="block1_conv_a")(inputs)
    h = keras.layers.Conv2D(4, 3, name="block1_conv_b")(h)
    h = keras.layers.BatchNormalization(name="block1_bn")(h)
    h = keras.layers.ReLU(name="block1_relu")(h)
    h = keras.layers.AveragePooling2D(2, name="block1_pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(8, activation="relu", name="dense1")(h)
    outputs = keras.layers.Dense(3, name="logits")(h)
    return keras.Model(inputs, outputs)


def test_cascade_groups_go_top_down(small_cnn):
    assert ff.cascade_groups(small_cnn, "block") == [
        ("logits", ["logits"]), ("dense1", ["dense1"]),
        ("block1", ["block1_bn", "block1_conv_b", "block1_conv_a"])]
    assert [g for g, _ in ff.cascade_groups(small_cnn, "layer")] == [
        "logits", "dense1", "block1_bn", "block1_conv_b", "block1_conv_a"]


def test_cascade_randomises_exactly_the_layers_it_names(small_cnn):
    trained = [[np.array(w) for w in layer.get_weights()] for layer in small_cnn.layers]
    seen = []
    for label, done, model in ff.randomisation_cascade(small_cnn, "layer", seed=0):
        seen.append(label)
        for layer, before in zip(model.layers, trained):
            for w, w0, var in zip(layer.get_weights(), before, layer.weights):
                same = np.array_equal(w, w0)
                if layer.name in done and var.trainable and w0.std() > 0:
                    assert not same, f"{label}: {layer.name}/{var.name} was not randomised"
                elif layer.name not in done or not var.trainable:
                    assert same, f"{label}: {layer.name}/{var.name} changed but was not randomised"
    assert seen[-1] == "block1_conv_a"
    for layer, before in zip(small_cnn.layers, trained):  # the trained model is untouched
        for w, w0 in zip(layer.get_weights(), before):
            np.testing.assert_array_equal(w, w0)


def test_a_map_that_ignores_the_weights_is_flagged(small_cnn, rng):
    from brainage.relevance import make_analyzer

    x = rng.uniform(0, 1, (3, 10, 9, 1)).astype(np.float32)
    classes = np.asarray(small_cnn(x)).argmax(axis=1)

    def gradient(model, inputs):
        return make_analyzer(model, "gradient", compile=False).explain(
            inputs, target="true", labels=classes).maps

    tables = []
    for name, fn in (("input", lambda model, inputs: inputs), ("gradient", gradient)):
        t = ff.cascading_randomisation(small_cnn, x, fn, granularity="block", seed=0)
        tables.append(t.assign(method=name))
    table = pd.concat(tables, ignore_index=True)
    assert list(table.columns[:4]) == ["input", "step", "layer", "n_layers"]
    assert {"spearman_abs", "ssim_abs", "spearman_signed", "ssim_signed"} <= set(table.columns)
    assert len(table) == 2 * 3 * 3
    inputs = table[table.method == "input"]
    np.testing.assert_allclose(inputs[["spearman_abs", "ssim_abs"]], 1.0, atol=1e-6)
    flagged = ff.insensitive_methods(table, after="logits", threshold=0.9)
    assert "input" in flagged and "gradient" not in flagged
    with pytest.raises(ValueError, match="cascade step 'block9' not in"):
        ff.insensitive_methods(table, after="block9")


def test_map_similarity(rng):
    a = rng.standard_normal((9, 8, 7, 1))
    same = ff.map_similarity(a, 3 * a)
    assert same["spearman"] == pytest.approx(1) and same["ssim"] == pytest.approx(1)
    flipped = ff.map_similarity(a, -a)  # absolute maps: identical; signed: opposite
    assert flipped["spearman"] == pytest.approx(1)
    assert ff.map_similarity(a, -a, signed=True)["spearman"] == pytest.approx(-1)
    other = ff.map_similarity(a, rng.standard_normal(a.shape))
    assert abs(other["spearman"]) < 0.2 and other["ssim"] < 0.3


def test_one_cascade_for_several_methods_equals_one_cascade_each(small_cnn, rng):
    from brainage.relevance import make_analyzer

    x = rng.uniform(0, 1, (2, 10, 9, 1)).astype(np.float32)
    built = []

    def explainer(name):
        def explain(model, inputs):
            built.append(name)
            return make_analyzer(model, name, compile=False).explain(
                inputs, target="true", labels=[0, 2]).maps
        return explain

    alone = {name: ff.cascading_randomisation(small_cnn, x, explainer(name), seed=0)
             for name in ("gradient", "dtd")}
    built.clear()
    both = ff.cascading_randomisation(
        small_cnn, x, lambda m, v: {name: explainer(name)(m, v) for name in ("gradient", "dtd")},
        seed=0)
    assert built == ["gradient", "dtd"] * 4  # the original maps, then once per cascade step
    assert list(both.columns[:5]) == ["key", "input", "step", "layer", "n_layers"]
    for name, table in alone.items():
        mine = both[both["key"] == name].drop(columns="key").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, table)

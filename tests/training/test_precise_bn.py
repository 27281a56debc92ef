"""Precise BatchNorm against a NumPy computation of the training batches' statistics."""
import keras
import numpy as np
import pytest

from brainage.training.precise_bn import (
    PopulationMoments,
    population_statistics,
    recomputed_layers,
    update_bn_statistics,
)

SHAPE = (6, 7, 5, 1)  # uneven, so axis mix-ups fail


def _two_bn_model(seed=0):
    """conv -> bn_a -> relu -> flatten -> dense -> bn_b -> logits, with non-trivial BN weights."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv3D(3, 2, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(4, name="dense")(x)
    x = keras.layers.BatchNormalization(name="bn_b")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    rng = np.random.default_rng(seed)
    for name in ("bn_a", "bn_b"):
        layer = model.get_layer(name)
        n = layer.gamma.shape[0]
        layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 1, n),  # gamma, beta
                           rng.normal(0, 1, n), rng.uniform(0.5, 2, n)])  # stale statistics
    return model


def _numpy_statistics(model, batches):
    """Population mean and variance of bn_a's and bn_b's inputs, in float64, batch by batch:
    bn_a normalises by its batch's statistics (training mode) before bn_b sees the batch."""
    conv = keras.Model(model.input, model.get_layer("conv").output)
    bn_a = model.get_layer("bn_a")
    gamma, beta = (np.asarray(w, np.float64) for w in bn_a.get_weights()[:2])
    kernel, bias = (np.asarray(w, np.float64) for w in model.get_layer("dense").get_weights())
    inputs_a, inputs_b = [], []
    for x in batches:
        a = np.asarray(conv.predict(x, verbose=0), np.float64)
        mean, var = a.mean(axis=(0, 1, 2, 3)), a.var(axis=(0, 1, 2, 3))
        h = np.maximum((a - mean) / np.sqrt(var + bn_a.epsilon) * gamma + beta, 0)
        inputs_a.append(a.reshape(-1, a.shape[-1]))
        inputs_b.append(h.reshape(len(x), -1) @ kernel + bias)
    # All batches' activations together: their mean and (population) variance.
    return {name: (np.concatenate(v).mean(axis=0), np.concatenate(v).var(axis=0))
            for name, v in [("bn_a", inputs_a), ("bn_b", inputs_b)]}


def _batches(rng, sizes=(4, 4, 3)):
    return [rng.uniform(0, 1, (n,) + SHAPE).astype(np.float32) for n in sizes]


def test_statistics_equal_a_numpy_computation_over_the_batches(rng):
    model = _two_bn_model()
    batches = _batches(rng)
    expected = _numpy_statistics(model, batches)
    got = population_statistics(model, [(x,) for x in batches])
    assert set(got) == {"bn_a", "bn_b"}
    for name, (mean, var) in expected.items():
        np.testing.assert_allclose(got[name][0], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[name][1], var, rtol=1e-5, atol=1e-6)
    # Only the first n_batches count.
    first = population_statistics(model, batches, n_batches=1)
    np.testing.assert_allclose(first["bn_a"][0], _numpy_statistics(model, batches[:1])["bn_a"][0],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_only_the_moving_statistics_change(rng):
    model = _two_bn_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = _batches(rng)
    model.fit(batches[0], np.array([0, 1, 2, 1]), epochs=1, verbose=0)  # optimizer state exists
    moving = {id(layer.moving_mean) for layer in recomputed_layers(model)}
    moving |= {id(layer.moving_variance) for layer in recomputed_layers(model)}
    before = [(id(w), w.path, np.array(w)) for w in model.weights + model.optimizer.variables]
    expected = population_statistics(model, batches)

    assert update_bn_statistics(model, batches) == 2
    after = {id(w): np.array(w) for w in model.weights + model.optimizer.variables}
    changed = [path for key, path, value in before if not np.array_equal(after[key], value)]
    assert sorted(changed) == ["bn_a/moving_mean", "bn_a/moving_variance",
                               "bn_b/moving_mean", "bn_b/moving_variance"]
    assert all(key in moving for key, path, _ in before if path in changed)
    for name, (mean, var) in expected.items():
        layer = model.get_layer(name)
        np.testing.assert_allclose(np.array(layer.moving_mean), mean, rtol=1e-6)
        np.testing.assert_allclose(np.array(layer.moving_variance), var, rtol=1e-6)
    # Inference now normalises bn_a's input by the training batches' population statistics.
    mean_a = expected["bn_a"][0]
    assert not np.allclose(mean_a, 0) and np.isfinite(model.predict(batches[0], verbose=0)).all()


def test_frozen_layers_and_models_without_bn_are_left_alone(rng):
    model = _two_bn_model()
    model.get_layer("bn_b").trainable = False  # Keras runs it in inference mode: nothing to fix
    stale = np.array(model.get_layer("bn_b").moving_mean)
    assert [layer.name for layer in recomputed_layers(model)] == ["bn_a"]
    assert update_bn_statistics(model, _batches(rng)) == 1
    np.testing.assert_array_equal(np.array(model.get_layer("bn_b").moving_mean), stale)
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert update_bn_statistics(plain, [np.ones((2, 3), np.float32)]) == 0


def test_population_moments_weight_batches_by_size():
    moments = PopulationMoments()
    values = [np.array([1.0, 2.0, 4.0]), np.array([3.0, 5.0])]
    for v in values:
        moments.add([v.mean()], [v.var()], len(v))
    everything = np.concatenate(values)
    assert moments.mean == pytest.approx([everything.mean()])
    assert moments.variance == pytest.approx([everything.var()])


def _saved_and_population_statistics(run, data, settings):
    from brainage.training.inputs import precise_bn_sequence

    model = keras.saving.load_model(run / "model.keras")
    population = population_statistics(model, precise_bn_sequence(settings, data, 4))
    saved = {layer.name: (np.array(layer.moving_mean), np.array(layer.moving_variance))
             for layer in recomputed_layers(model)}
    return saved, population


@pytest.mark.slow
def test_the_saved_model_holds_the_population_statistics_of_its_weights(stage_run, tmp_path):
    """model.keras (the best epoch) was saved after precise BN recomputed its statistics; without
    precise BN the moving averages are something else."""
    from brainage.train import train
    from brainage.training.settings import TrainSettings
    from tests.builders import compose_train, tiny_data

    cfg = compose_train("trainer.epochs=3", "seed=2")
    saved, population = _saved_and_population_statistics(
        stage_run["run"], stage_run["data"], TrainSettings.from_cfg(cfg))
    assert set(saved) == {"block1_bn", "block2_bn"}
    for name, (mean, var) in population.items():
        np.testing.assert_allclose(saved[name][0], mean, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(saved[name][1], var, rtol=1e-4, atol=1e-6)
    assert stage_run["metrics"]["precise_bn"] == {"enabled": True, "batches": None}

    off = compose_train("trainer.epochs=1", "seed=2", "trainer.precise_bn.enabled=false",
                        "trainer.baselines.enabled=false")
    metrics = train(off, run_dir=tmp_path / "off", data=tiny_data())
    assert metrics["precise_bn"]["enabled"] is False and metrics["baselines"] == {}
    saved, population = _saved_and_population_statistics(tmp_path / "off", tiny_data(),
                                                         TrainSettings.from_cfg(off))
    assert not np.allclose(saved["block1_bn"][1], population["block1_bn"][1], rtol=1e-2)

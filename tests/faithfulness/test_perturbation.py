"""Region perturbation and AOPC on tiny models with known answers."""
import numpy as np
import pytest

from brainage import faithfulness as ff


def _linear_model(shape, weights):
    """Flatten → Dense(1, linear, no bias): the logit is Σ w·x, the true contribution map is w·x."""
    import keras

    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                              keras.layers.Dense(1, use_bias=False)])
    model.layers[-1].kernel.assign(weights.reshape(-1, 1).astype(np.float32))
    return model


def test_patch_labels_tile_uneven_shapes():
    labels, n = ff.patch_labels((5, 7, 3), 2)
    assert labels.shape == (5, 7, 3) and n == 3 * 4 * 2
    assert np.array_equal(np.unique(labels), np.arange(n))
    assert labels[0, 0, 0] == labels[1, 1, 1] != labels[2, 0, 0]
    maps = np.ones((2, 5, 7, 3, 1))
    sums = ff.patch_relevance(maps, labels, n)
    assert sums.shape == (2, n) and sums.sum() == 2 * 5 * 7 * 3
    assert sums[0, 0] == 8 and sums[0, -1] == 1  # a full corner patch and the cut-short last one


def test_aopc_ranks_the_true_map_above_random_above_reversed(rng):
    shape = (8, 8, 1)
    w = rng.uniform(0, 1, shape)
    x = rng.uniform(0.5, 1, (3,) + shape).astype(np.float32)
    model = _linear_model(shape, w)
    predict = ff.logit_function(model, batch_size=16)
    true_map = x * w[None]
    baseline = ff.make_baseline(x, "zeros")
    kw = dict(classes=[0, 0, 0], baseline=baseline, patch=2, steps=6, patches_per_step=1)
    best = ff.region_perturbation(predict, x, true_map, **kw)
    rand = ff.region_perturbation(predict, x, ff.random_maps(x.shape, seed=1), **kw)
    worst = ff.region_perturbation(predict, x, -true_map, **kw)
    np.testing.assert_allclose(best.logits[:, 0], true_map.reshape(3, -1).sum(1), rtol=1e-5)
    assert best.drops.shape == (3, 7) and (best.drops[:, 0] == 0).all()
    # Removing the patch of largest Σ w·x first drops the logit by exactly that patch's sum.
    labels, n = ff.patch_labels(shape[:-1], 2)
    top = ff.patch_relevance(true_map, labels, n).max(axis=1)
    np.testing.assert_allclose(best.drops[:, 1], top, rtol=1e-5)
    assert np.all(np.diff(best.drops, axis=1) >= -1e-6)  # MoRF curve never goes back up here
    assert best.aopc.mean() > rand.aopc.mean() > worst.aopc.mean()
    np.testing.assert_allclose(best.fraction_removed, np.arange(7) * 4 / 64)


def test_region_perturbation_checks_its_input():
    x = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="remove 20 patches but the input has only 4"):
        ff.region_perturbation(lambda b: np.zeros((len(b), 1)), x, x, [0], x, patch=2, steps=10,
                               patches_per_step=2)
    with pytest.raises(ValueError, match="do not match inputs"):
        ff.region_perturbation(lambda b: b, x, x[:, :3], [0], x)


def test_baselines(rng):
    x = rng.uniform(0, 1, (2, 6, 7, 5, 1)).astype(np.float32)
    assert not ff.make_baseline(x, "zeros").any()
    mean = x.mean(axis=0)
    np.testing.assert_array_equal(ff.make_baseline(x, "mean", mean[..., 0])[1], mean)
    blurred = ff.make_baseline(x, "blur", blur_sigma=2.0)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    np.testing.assert_allclose(blurred.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), rtol=0.05)
    with pytest.raises(ValueError, match="unknown perturbation baseline 'noise'"):
        ff.make_baseline(x, "noise")
    with pytest.raises(ValueError, match="needs the cohort mean image"):
        ff.make_baseline(x, "mean")


def _per_subject_reference(predict, x, maps, classes, baseline, patch, steps, patches_per_step):
    """The per-subject computation evaluate used before batching (a full rank mask per step and
    ``np.where`` copies): the independent reference the batched version must reproduce."""
    labels, n_patches = ff.patch_labels(x.shape[1:-1], patch)
    removed = np.arange(steps + 1) * patches_per_step
    scores = ff.patch_relevance(maps, labels, n_patches)
    logits = np.empty((len(x), removed.size))
    for b in range(len(x)):
        order = np.argsort(-scores[b], kind="stable")
        rank = np.empty(n_patches, dtype=np.int64)
        rank[order] = np.arange(n_patches)
        masks = rank[labels][..., None][None] < removed.reshape((-1,) + (1,) * (x.ndim - 1))
        logits[b] = np.asarray(predict(np.where(masks, baseline[b][None], x[b][None])))[:, classes[b]]
    return logits[:, :1] - logits


def test_batched_perturbation_equals_the_per_subject_computation(rng):
    import keras

    keras.utils.set_random_seed(1)
    shape = (7, 9, 6, 1)  # uneven: patches at the far edges are cut short
    model = keras.Sequential([
        keras.Input(shape), keras.layers.Conv3D(3, 3, activation="relu"),
        keras.layers.BatchNormalization(), keras.layers.AveragePooling3D(2),
        keras.layers.Flatten(), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(3)])
    x = rng.uniform(0, 1, (5,) + shape).astype(np.float32)
    maps = rng.standard_normal(x.shape).astype(np.float32)
    maps[0] = 0.0  # all ties: patch order decides
    classes = np.array([0, 2, 1, 1, 0])
    baseline = ff.make_baseline(x, "mean", x.mean(axis=0))
    kw = dict(patch=2, steps=7, patches_per_step=3)
    expected = _per_subject_reference(ff.logit_function(model, 64), x, maps, classes, baseline,
                                      **kw)
    for batch_size in (None, 4, 13, 100):  # one subject per call, and batches across subjects
        calls = []

        def predict(inputs, forward=ff.logit_function(model, 64)):
            calls.append(len(inputs))
            return forward(inputs)

        got = ff.region_perturbation(predict, x, maps, classes, baseline, batch_size=batch_size,
                                     **kw)
        np.testing.assert_allclose(got.drops, expected, atol=1e-6)
        assert sum(calls) == 5 * 8  # every subject at every step, once
        assert max(calls) == min(batch_size or 8, 40)  # steps + 1 = 8 by default


def test_maps_are_ranked_against_the_perturbations_reference(rng):
    """Why integrated gradients from zero can sit at the AOPC floor (issue #19): on a linear model,
    replacing a patch by the mean image changes the logit by Σ_patch w·(x − mean), so a map rooted
    at the mean (IG from the mean: (x − mean)·w) ranks patches exactly by their effect, while a map
    rooted at zero (IG from zero: x·w) ranks them by w·x ≈ w·mean on GM-like inputs that sit near
    the mean — nearly unrelated to what removing them does. With the zeros baseline it flips."""
    shape = (12, 12, 1)
    w = rng.standard_normal(shape)
    mean = rng.uniform(0.3, 0.7, shape)
    x = (mean[None] + 0.1 * rng.standard_normal((8,) + shape)).astype(np.float32)
    predict = ff.logit_function(_linear_model(shape, w))
    zero_rooted, mean_rooted = x * w[None], (x - mean[None]) * w[None]
    aopc = {}
    for kind in ("mean", "zeros"):
        kw = dict(classes=[0] * 8, baseline=ff.make_baseline(x, kind, mean[..., 0]), patch=2,
                  steps=8, patches_per_step=2)
        aopc[kind] = {name: ff.region_perturbation(predict, x, m, **kw).aopc.mean()
                      for name, m in (("zero", zero_rooted), ("mean", mean_rooted))}
        if kind == "mean":  # the mean-rooted map's first step removes the largest effects
            labels, n = ff.patch_labels(shape[:-1], 2)
            top2 = np.sort(ff.patch_relevance(mean_rooted, labels, n), axis=1)[:, -2:].sum(1)
            np.testing.assert_allclose(
                ff.region_perturbation(predict, x, mean_rooted, **kw).drops[:, 1], top2, rtol=1e-4)
    assert aopc["mean"]["mean"] > 3 * aopc["mean"]["zero"]
    assert aopc["zeros"]["zero"] > 2 * aopc["zeros"]["mean"]

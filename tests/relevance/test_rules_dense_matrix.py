"""Every rule on every layer type against an independent float64 dense-matrix implementation.

The engine runs in float64 (layers built under the float64 dtype policy), so the comparison
measures the rule; the bound is the round-off a float64 computation of the rule may carry
(:func:`~.dense_reference.rule_roundoff_bound`, which grows with the condition number of each
denominator). Each rule also runs once in float32 against the same bound at float32's unit
round-off: what float32 loses near a small LRP denominator is allowed for by its conditioning,
not by a tolerance picked after a failure. Average pooling in 3-D has no float64 kernel in
TensorFlow; it runs in float32 (positive weights and inputs: condition number 1).
"""

import keras
import numpy as np
import pytest

from brainage.relevance import (
    LRP0,
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    WSquare,
    ZBox,
    ZPlus,
    propagate,
)

from .dense_reference import (
    avg_pool_matrix,
    conv_matrix,
    global_avg_matrix,
    max_pool_wta,
    rule_reference,
    rule_roundoff_bound,
)
from .nets import float64_policy

BATCH = 2

# (id, layer factory, input shape without batch) — uneven sizes on purpose.
LINEAR_CASES = [
    ("dense", lambda: keras.layers.Dense(5), (7,)),
    ("conv1d_valid", lambda: keras.layers.Conv1D(3, 3), (9, 2)),
    ("conv1d_same_strided", lambda: keras.layers.Conv1D(2, 4, strides=3, padding="same"), (10, 2)),
    ("conv2d_valid_strided", lambda: keras.layers.Conv2D(2, 2, strides=(2, 3)), (7, 8, 1)),
    ("conv2d_same_strided", lambda: keras.layers.Conv2D(3, 3, strides=2, padding="same"), (7, 8, 2)),
    ("conv3d_valid", lambda: keras.layers.Conv3D(2, 3), (5, 6, 4, 2)),
    (
        "conv3d_same_strided",
        lambda: keras.layers.Conv3D(2, (3, 2, 3), strides=(2, 1, 2), padding="same"),
        (5, 6, 7, 1),
    ),
]

RULES = {
    "lrp0": LRP0(),
    "epsilon": Epsilon(0.1),
    "gamma": Gamma(0.25),
    "alpha_beta": AlphaBeta(2.0, 1.0),
    "zplus": ZPlus(),
    "zbox": ZBox(0.0, 1.0),
    "w2": WSquare(),
    "flat": Flat(),
}


def _linear_layer(factory, shape, rng, dtype="float64"):
    """A layer of ``dtype`` with float32-drawn weights (the same numbers in either type), its
    dense matrix and tiled bias."""
    if dtype == "float64":
        with float64_policy():
            layer = factory()
    else:
        layer = factory()
    layer.build((None, *shape))
    kernel = rng.normal(0.0, 1.0, layer.kernel.shape).astype("float32")
    # A positive bias keeps LRP-0/ε/γ denominators away from 0 so float32 vs float64 is a
    # fair comparison; the zero-denominator case has its own test.
    bias = rng.uniform(0.5, 1.0, layer.bias.shape).astype("float32")
    layer.set_weights([kernel, bias])
    if isinstance(layer, keras.layers.Dense):
        w = kernel.astype(np.float64)
    else:
        w, _ = conv_matrix(kernel.astype(np.float64), shape[:-1], layer.strides, layer.padding)
    n_out = w.shape[1] // bias.shape[0]
    return layer, w, np.tile(bias.astype(np.float64), n_out)


UNIT = {"float64": np.finfo(np.float64).eps / 2, "float32": np.finfo(np.float32).eps / 2}


def _check(engine, reference, bound):
    """Every element within its round-off bound (twice it: the bound is first order)."""
    err = np.abs(engine.astype(np.float64) - reference)
    worst = int(np.argmax(err / np.maximum(bound, np.finfo(np.float64).tiny)))
    assert np.all(err <= 2 * bound), (
        f"element {worst}: engine {engine[worst]!r}, reference {reference[worst]!r}, error {err[worst]:.3g} "
        f"> 2 × bound {bound[worst]:.3g}")


def _rule_matches_dense_matrix(case, rule_name, rng, dtype):
    _, factory, shape = case
    layer, w, b = _linear_layer(factory, shape, rng, dtype)
    a = rng.uniform(0.05, 1.0, (BATCH, *shape)).astype("float32")
    out = np.asarray(layer(a.astype(dtype)))
    # The matrix really is the layer (validates the independent reference).
    np.testing.assert_allclose(a.reshape(BATCH, -1) @ w + b, out.reshape(BATCH, -1), rtol=1e-5, atol=1e-5)
    relevance = rng.uniform(0.1, 1.0, out.shape).astype("float32")

    got = propagate(layer, a, relevance, RULES[rule_name])
    assert got.dtype == dtype

    for i in range(BATCH):
        args = (rule_name, w, b, a[i].reshape(-1).astype(np.float64), relevance[i].reshape(-1).astype(np.float64))
        box = dict(low=np.zeros(w.shape[0]), high=np.ones(w.shape[0]))
        _check(got[i].reshape(-1), rule_reference(*args, **box), rule_roundoff_bound(*args, **box, unit=UNIT[dtype]))


@pytest.mark.parametrize("rule_name", sorted(RULES))
@pytest.mark.parametrize("case", LINEAR_CASES, ids=[c[0] for c in LINEAR_CASES])
def test_linear_rule_matches_dense_matrix(case, rule_name, rng):
    _rule_matches_dense_matrix(case, rule_name, rng, "float64")


@pytest.mark.parametrize("rule_name", sorted(RULES))
def test_linear_rule_in_float32_is_within_its_conditioning_bound(rule_name, rng):
    """The product's layer (a valid Conv3D) in float32, the engine's type for real models."""
    _rule_matches_dense_matrix(LINEAR_CASES[5], rule_name, rng, "float32")


@pytest.mark.parametrize("case", LINEAR_CASES[::3], ids=[c[0] for c in LINEAR_CASES[::3]])
def test_zbox_per_voxel_bounds(case, rng):
    _, factory, shape = case
    layer, w, b = _linear_layer(factory, shape, rng)
    low = -rng.uniform(0.0, 0.5, shape).astype("float32")
    high = rng.uniform(1.0, 1.5, shape).astype("float32")
    a = rng.uniform(0.0, 1.0, (BATCH, *shape)).astype("float32")
    relevance = rng.uniform(0.1, 1.0, np.asarray(layer(a)).shape).astype("float32")

    got = propagate(layer, a, relevance, ZBox(low, high))

    for i in range(BATCH):
        args = ("zbox", w, b, a[i].reshape(-1).astype(np.float64), relevance[i].reshape(-1).astype(np.float64))
        box = dict(low=low.reshape(-1).astype(np.float64), high=high.reshape(-1).astype(np.float64))
        _check(got[i].reshape(-1), rule_reference(*args, **box), rule_roundoff_bound(*args, **box, unit=UNIT["float64"]))
    # zB is positive for inputs inside the box.
    assert got.min() >= -1e-7


@pytest.mark.parametrize("rule", [ZPlus(), AlphaBeta(2.0, 1.0)], ids=["zplus", "alpha_beta"])
def test_sign_split_rules_on_mixed_sign_inputs(rule, rng):
    """z⁺/αβ on inputs of either sign use (a_i w_ij)^± (the general, non-ReLU path)."""
    layer, w, b = _linear_layer(LINEAR_CASES[5][1], LINEAR_CASES[5][2], rng)
    a = rng.normal(0.0, 1.0, (BATCH, *LINEAR_CASES[5][2])).astype("float32")
    relevance = rng.uniform(0.1, 1.0, np.asarray(layer(a)).shape).astype("float32")

    got = propagate(layer, a, relevance, rule)

    name = "zplus" if isinstance(rule, ZPlus) else "alpha_beta"
    for i in range(BATCH):
        args = (name, w, b, a[i].reshape(-1).astype(np.float64), relevance[i].reshape(-1).astype(np.float64))
        _check(got[i].reshape(-1), rule_reference(*args), rule_roundoff_bound(*args, unit=UNIT["float64"]))


def test_alpha1_beta0_is_zplus(rng):
    layer, _, _ = _linear_layer(LINEAR_CASES[4][1], LINEAR_CASES[4][2], rng)
    a = rng.uniform(0.0, 1.0, (BATCH, *LINEAR_CASES[4][2])).astype("float32")
    relevance = rng.uniform(0.1, 1.0, np.asarray(layer(a)).shape).astype("float32")
    np.testing.assert_allclose(
        propagate(layer, a, relevance, AlphaBeta(1.0, 0.0)), propagate(layer, a, relevance, ZPlus()), rtol=1e-6
    )


def test_zplus_dead_unit_drops_relevance_without_nan(rng):
    """A unit with no positive contribution (Σ_i a_i w_ij⁺ = 0) passes nothing down."""
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    kernel = rng.uniform(0.1, 1.0, (4, 3)).astype("float32")
    kernel[:, 1] = -kernel[:, 1]  # unit 1 only has negative weights
    layer.set_weights([kernel, np.array([0.0, 5.0, 0.0], dtype="float32")])
    a = rng.uniform(0.1, 1.0, (BATCH, 4)).astype("float32")
    relevance = np.ones((BATCH, 3), dtype="float32")

    got = propagate(layer, a, relevance, ZPlus())

    assert np.isfinite(got).all()
    np.testing.assert_allclose(got.sum(axis=1), 2.0, rtol=1e-6)  # unit 1's relevance leaks


POOL_CASES = [
    ("avgpool3d_uneven", lambda: keras.layers.AveragePooling3D(2), (5, 6, 4, 2)),
    ("avgpool2d_same", lambda: keras.layers.AveragePooling2D(3, strides=2, padding="same"), (7, 8, 2)),
    ("avgpool1d_strided", lambda: keras.layers.AveragePooling1D(3, strides=2), (9, 3)),
    ("global_avg3d", lambda: keras.layers.GlobalAveragePooling3D(), (3, 4, 5, 2)),
    ("global_avg1d", lambda: keras.layers.GlobalAveragePooling1D(), (6, 3)),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_average_pooling_is_lrp0_on_the_pool_matrix(case, rng):
    _, factory, shape = case
    layer = factory()
    spatial, channels = shape[:-1], shape[-1]
    if isinstance(layer, (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling3D)):
        w = global_avg_matrix(spatial, channels)
    else:
        w, _ = avg_pool_matrix(spatial, channels, layer.pool_size, layer.strides, layer.padding)
    a = rng.uniform(0.05, 1.0, (BATCH, *shape)).astype("float32")
    out = np.asarray(layer(a))
    np.testing.assert_allclose(a.reshape(BATCH, -1) @ w, out.reshape(BATCH, -1), rtol=1e-5)
    relevance = rng.uniform(0.1, 1.0, out.shape).astype("float32")

    got = propagate(layer, a, relevance)

    for i in range(BATCH):
        args = ("lrp0", w, 0.0, a[i].reshape(-1).astype(np.float64), relevance[i].reshape(-1).astype(np.float64))
        _check(got[i].reshape(-1), rule_reference(*args), rule_roundoff_bound(*args, unit=UNIT["float32"]))


@pytest.mark.parametrize(
    "factory, shape",
    [
        (lambda: keras.layers.MaxPooling2D(2), (6, 7, 2)),
        (lambda: keras.layers.MaxPooling3D(2, strides=1), (4, 5, 3, 2)),  # overlapping windows
    ],
    ids=["maxpool2d", "maxpool3d_overlapping"],
)
def test_max_pooling_is_winner_take_all(factory, shape, rng):
    layer = factory()
    a = rng.uniform(0.0, 1.0, (BATCH, *shape)).astype("float32")
    relevance = rng.uniform(0.1, 1.0, np.asarray(layer(a)).shape).astype("float32")

    got = propagate(layer, a, relevance)

    for i in range(BATCH):  # relevance is routed, not divided: sums of ≤ 8 positive floats (8u < 1e-6)
        np.testing.assert_allclose(got[i], max_pool_wta(a[i], layer.pool_size, layer.strides, relevance[i]), rtol=1e-6)


def test_batch_norm_passthrough_is_seed_equation_3_1(rng):
    """R_i = R_j (seed 000 eq. 3.1), whatever the BN statistics."""
    layer = keras.layers.BatchNormalization()
    layer.build((None, 5, 4, 3))
    layer.set_weights([rng.uniform(-2, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3)])
    a = rng.normal(size=(BATCH, 5, 4, 3)).astype("float32")
    relevance = rng.normal(size=(BATCH, 5, 4, 3)).astype("float32")
    np.testing.assert_array_equal(propagate(layer, a, relevance), relevance)

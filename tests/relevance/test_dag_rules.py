"""Graph-only layers and merges against independent float64 dense matrices (tiny, uneven sizes).

Transposed convolutions and the sign-mixing merges run in float64 against the float64 round-off
bound of their rule (test_rules_dense_matrix.py explains it), so a bound measures the rule."""

import keras
import numpy as np
import pytest

from brainage.relevance import LRP0, AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus, propagate
from brainage.relevance._graph import Step
from brainage.relevance.dag_propagation import merge_relevance

from .dag_reference import (
    concat_matrix,
    conv_transpose_matrix,
    copy_matrix,
    cropping_map,
    padding_map,
    sum_matrix,
    upsampling_map,
)
from .dense_reference import rule_reference, rule_roundoff_bound
from .nets import float64_policy

BATCH = 2
RULES = {"lrp0": LRP0(), "epsilon": Epsilon(0.1), "gamma": Gamma(0.25), "alpha_beta": AlphaBeta(2.0, 1.0),
         "zplus": ZPlus(), "zbox": ZBox(0.0, 1.0), "w2": WSquare(), "flat": Flat()}
TRANSPOSE_CASES = [
    ("conv3d_transpose_valid", lambda: keras.layers.Conv3DTranspose(2, 3, strides=2), (3, 2, 4, 2)),
    ("conv3d_transpose_same", lambda: keras.layers.Conv3DTranspose(3, (2, 3, 2), strides=(2, 1, 2),
                                                                   padding="same"), (2, 3, 3, 1)),
    ("conv2d_transpose_same", lambda: keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same"), (3, 4, 2)),
]


UNIT64 = np.finfo(np.float64).eps / 2


def _check(engine, reference):
    """Copies and slices: float32 sums of a few values."""
    np.testing.assert_allclose(engine, reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max())


def _check_bound(engine, reference, bound):
    """Every element within twice its first-order round-off bound."""
    err = np.abs(engine - reference)
    assert np.all(err <= 2 * bound), (err.max(), bound[np.argmax(err)])


def _flat(v):
    return v.reshape(-1).astype(np.float64)


@pytest.mark.parametrize("rule_name", sorted(RULES))
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[c[0] for c in TRANSPOSE_CASES])
def test_conv_transpose_rule_matches_dense_matrix(case, rule_name, rng):
    _, factory, shape = case
    with float64_policy():
        layer = factory()
    layer.build((None, *shape))
    kernel = rng.normal(0.0, 1.0, layer.kernel.shape).astype("float32")
    bias = rng.uniform(0.5, 1.0, layer.bias.shape).astype("float32")
    layer.set_weights([kernel, bias])
    w, out = conv_transpose_matrix(kernel.astype(np.float64), shape[:-1], layer.strides, layer.padding)
    b = np.tile(bias.astype(np.float64), int(np.prod(out)))
    a = rng.uniform(0.05, 1.0, (BATCH, *shape)).astype("float32")
    y = np.asarray(layer(a))
    np.testing.assert_allclose(a.reshape(BATCH, -1) @ w + b, y.reshape(BATCH, -1), rtol=1e-5, atol=1e-5)
    relevance = rng.uniform(0.1, 1.0, y.shape).astype("float32")

    got = propagate(layer, a, relevance, RULES[rule_name])

    assert got.dtype == np.float64
    for i in range(BATCH):
        args, box = (rule_name, w, b, _flat(a[i]), _flat(relevance[i])), dict(low=np.zeros(w.shape[0]), high=np.ones(w.shape[0]))
        _check_bound(_flat(got[i]), rule_reference(*args, **box), rule_roundoff_bound(*args, **box, unit=UNIT64))


INDEX_CASES = [
    ("upsampling3d", lambda: keras.layers.UpSampling3D((2, 1, 3)), lambda s: upsampling_map(s, (2, 1, 3))),
    ("cropping3d", lambda: keras.layers.Cropping3D(((1, 0), (0, 2), (1, 1))),
     lambda s: cropping_map(s, ((1, 0), (0, 2), (1, 1)))),
    ("zeropadding3d", lambda: keras.layers.ZeroPadding3D(((1, 0), (2, 1), (0, 1))),
     lambda s: padding_map(s, ((1, 0), (2, 1), (0, 1)))),
    ("upsampling2d", lambda: keras.layers.UpSampling2D((1, 2)), lambda s: upsampling_map(s, (1, 2))),
]


@pytest.mark.parametrize("case", INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
def test_copy_layers_send_relevance_back_through_their_matrix(case, rng):
    """UpSampling sums the copies' relevance; Cropping gives cropped voxels none; ZeroPadding drops
    the padding's relevance: R_in = W R_out with the layer's 0/1 matrix W."""
    _, factory, geometry = case
    layer = factory()
    shape = (4, 3, 5, 2) if "3d" in case[0] else (3, 4, 2)
    w = copy_matrix(shape[:-1], shape[-1], geometry(shape[:-1]))
    a = rng.uniform(0.0, 1.0, (BATCH, *shape)).astype("float32")
    y = np.asarray(layer(a))
    np.testing.assert_array_equal(a.reshape(BATCH, -1) @ w, y.reshape(BATCH, -1))
    relevance = rng.normal(0.0, 1.0, y.shape).astype("float32")

    got = propagate(layer, a, relevance)

    for i in range(BATCH):
        _check(_flat(got[i]), w @ _flat(relevance[i]))


def test_rescaling_passes_relevance_unchanged(rng):
    layer = keras.layers.Rescaling(0.5, offset=0.25)
    a = rng.normal(size=(BATCH, 3, 4, 2)).astype("float32")
    relevance = rng.normal(size=(BATCH, 3, 4, 2)).astype("float32")
    np.testing.assert_array_equal(propagate(layer, a, relevance), relevance)


def _merge(kind, inputs, relevance, merge):
    step = Step(kind, kind, None, conv_args={"axis": -1} if kind == "concat" else {})
    tensors = [keras.ops.convert_to_tensor(x) for x in inputs]
    per_input, sinks = merge_relevance(step, tensors, [keras.ops.convert_to_tensor(relevance)], merge)
    return [keras.ops.convert_to_numpy(r[0]) for r in per_input], keras.ops.convert_to_numpy(sinks[0])


@pytest.mark.parametrize("kind, signs", [("add", (1, 1, 1)), ("subtract", (1, -1))], ids=["add3", "subtract"])
@pytest.mark.parametrize("merge, rule", [("contribution", "lrp0"), ("positive", "zplus")])
def test_add_and_subtract_split_like_a_rule_on_the_sum_matrix(kind, signs, merge, rule, rng):
    """Add is the matrix [I I I] (Subtract [I −I]); the contribution split is LRP-0 on it, the
    positive split z⁺ on it. Inputs of mixed sign; the shares sum to one, so nothing is absorbed."""
    shape = (3, 2, 4, 2)
    n = int(np.prod(shape))
    inputs = [rng.normal(0.0, 1.0, (BATCH, *shape)) for _ in signs]
    inputs[0] = np.abs(inputs[0]) + 0.1  # a positive input everywhere: z⁺'s denominator is never 0
    relevance = rng.normal(0.0, 1.0, (BATCH, *shape))
    w = sum_matrix(n, signs)

    got, sinks = _merge(kind, inputs, relevance, merge)

    for i in range(BATCH):
        a = np.concatenate([_flat(x[i]) for x in inputs])
        args = (rule, w, 0.0, a, _flat(relevance[i]))
        _check_bound(np.concatenate([_flat(g[i]) for g in got]), rule_reference(*args),
                     rule_roundoff_bound(*args, unit=UNIT64))
    np.testing.assert_allclose(sum(g.sum(axis=tuple(range(1, g.ndim))) for g in got),
                               relevance.reshape(BATCH, -1).sum(1), rtol=1e-5)
    np.testing.assert_allclose(sinks, 0.0, atol=1e-6)


def test_positive_split_falls_back_to_contributions_where_no_input_is_positive():
    a = np.array([[-1.0, 2.0, 0.0]], "float32")
    b = np.array([[-3.0, -1.0, 0.0]], "float32")
    relevance = np.array([[4.0, 1.0, 5.0]], "float32")
    (ra, rb), sinks = _merge("add", [a, b], relevance, "positive")
    np.testing.assert_allclose(ra, [[1.0, 1.0, 0.0]])  # −1/−4 of 4; all of 1 (only a is positive)
    np.testing.assert_allclose(rb, [[3.0, 0.0, 0.0]])
    np.testing.assert_allclose(sinks, [5.0])  # a zero sum: its relevance is the merge's sink


def test_concatenate_hands_each_input_its_slice(rng):
    spatial, channels = (3, 2, 2), (2, 1, 3)
    inputs = [rng.uniform(0.1, 1.0, (BATCH, *spatial, c)).astype("float32") for c in channels]
    relevance = rng.normal(size=(BATCH, *spatial, sum(channels))).astype("float32")
    w = concat_matrix(spatial, channels)

    got, sinks = _merge("concat", inputs, relevance, "contribution")

    for i in range(BATCH):
        a = np.concatenate([_flat(x[i]) for x in inputs])
        np.testing.assert_allclose(a @ w, _flat(np.concatenate([x[i] for x in inputs], axis=-1)))
        _check(np.concatenate([_flat(g[i]) for g in got]), rule_reference("lrp0", w, 0.0, a, _flat(relevance[i])))
    np.testing.assert_array_equal(sinks, 0.0)

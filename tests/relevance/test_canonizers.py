"""Canonizer objects: MergeBatchNorm folds BN exactly; bn_mode is only an alias for them."""

import keras
import numpy as np
import pytest

from brainage.relevance import (
    Canonizer,
    MergeBatchNorm,
    RelevanceAnalyzer,
    analyzer_from_config,
    make_analyzer,
)
from brainage.relevance._graph import build_steps

from .nets import bn_free_copy, gm_volume, positive_logit_bias, randomize_batch_norm, taylor_net

SHAPE = (12, 13, 11, 1)


@pytest.fixture
def net(rng):
    x = gm_volume(rng, SHAPE, batch=2)
    model = randomize_batch_norm(taylor_net(SHAPE, widths=(3,)), rng, x, negative_gamma=True)
    return positive_logit_bias(model, x), x


@pytest.mark.slow
@pytest.mark.parametrize("composite", ["dtd", "lrp_composite"])
def test_merge_batch_norm_equals_hand_folded_bn_free_model(net, composite):
    model, x = net
    folded = bn_free_copy(model)
    np.testing.assert_allclose(np.asarray(folded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    merged = RelevanceAnalyzer(model, composite, canonizers=[MergeBatchNorm()]).explain(x)
    reference = RelevanceAnalyzer(folded, composite).explain(x)
    scale = np.abs(reference.maps).max()
    np.testing.assert_allclose(merged.maps, reference.maps, rtol=1e-5, atol=1e-6 * scale)
    # The BN layer stays in the trace (as an identity), the folded model has no such key.
    assert "block1_bn" in merged.trace and "block1_bn" not in reference.trace


@pytest.mark.parametrize(("bn_mode", "canonizers"), [("passthrough", []), ("canonize", [MergeBatchNorm()])])
def test_bn_mode_alias_is_identical_to_canonizer_objects(net, bn_mode, canonizers):
    model, x = net
    by_alias = RelevanceAnalyzer(model, "dtd", bn_mode=bn_mode, compile=False)
    by_objects = RelevanceAnalyzer(model, "dtd", canonizers=canonizers, compile=False)
    assert by_alias.canonizers == by_objects.canonizers == tuple(canonizers)
    assert by_alias.bn_mode == by_objects.bn_mode == bn_mode
    a, b = by_alias.explain(x), by_objects.explain(x)
    np.testing.assert_array_equal(a.maps, b.maps)
    assert list(a.trace) == list(b.trace)
    for key in a.trace:
        np.testing.assert_array_equal(a.trace[key], b.trace[key])
    # The registry and the config path resolve the alias the same way.
    assert make_analyzer(model, "dtd", bn_mode=bn_mode, compile=False).canonizers == tuple(canonizers)
    from_config = analyzer_from_config(model, {"name": "dtd", "bn_mode": bn_mode, "compile": False})
    assert from_config.canonizers == tuple(canonizers)


def test_trace_keys_do_not_depend_on_the_canonizers(net):
    model, x = net
    plain = RelevanceAnalyzer(model, "dtd", compile=False).explain(x)
    merged = RelevanceAnalyzer(model, "dtd", canonizers=[MergeBatchNorm()], compile=False).explain(x)
    assert list(plain.trace) == list(merged.trace)
    assert not np.allclose(plain.maps, merged.maps)  # negative γ: the two handlings differ


def test_merge_batch_norm_returns_new_steps_and_keeps_its_input(net):
    model, _ = net
    steps = build_steps(model)
    kernel_before = steps[1].kernel.copy()
    merged = MergeBatchNorm().apply(steps)
    assert [s.name for s in merged] == [s.name for s in steps]
    by_name = {s.name: s for s in merged}
    assert by_name["block1_bn"].kind == "identity"
    assert by_name["block1_conv_b"].folded_bn == "block1_bn"
    bn = model.get_layer("block1_bn")
    gamma, beta, mean, var = (w.astype(np.float64) for w in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    np.testing.assert_allclose(by_name["block1_conv_b"].kernel, kernel_before * scale, rtol=1e-6)
    # The input chain is untouched: BN still a BN step, conv_b's kernel still the model's.
    assert steps[1].name == "block1_conv_b" and steps[1].folded_bn is None
    assert [s.kind for s in steps if s.name == "block1_bn"] == ["bn"]
    np.testing.assert_array_equal(steps[1].kernel, kernel_before)
    np.testing.assert_array_equal(steps[1].kernel, model.get_layer("block1_conv_b").get_weights()[0])


class _RecordKinds(Canonizer):
    """Records the step kinds it is handed and returns the chain unchanged."""

    name = "record_kinds"

    def __init__(self):
        self.seen = None

    def apply(self, steps):
        self.seen = {s.name: s.kind for s in steps}
        return steps


def test_canonizers_apply_in_order(net):
    model, _ = net
    before, after = _RecordKinds(), _RecordKinds()
    analyzer = RelevanceAnalyzer(model, "dtd", canonizers=[before, MergeBatchNorm(), after], compile=False)
    assert before.seen["block1_bn"] == "bn"
    assert after.seen["block1_bn"] == "identity"
    assert list(after.seen) == [s.name for s in analyzer.steps]
    assert repr(analyzer).endswith("canonizers=[_RecordKinds(), MergeBatchNorm(), _RecordKinds()])")


def test_canonizer_arguments_are_checked(net):
    model, _ = net
    with pytest.raises(TypeError, match="canonizers or bn_mode, not both"):
        RelevanceAnalyzer(model, "dtd", canonizers=[MergeBatchNorm()], bn_mode="canonize")
    with pytest.raises(ValueError, match="bn_mode must be 'passthrough' or 'canonize', got 'fold'"):
        RelevanceAnalyzer(model, "dtd", bn_mode="fold")
    with pytest.raises(TypeError, match="expected Canonizer objects.*'canonize'"):
        RelevanceAnalyzer(model, "dtd", canonizers=["canonize"])


def test_merge_batch_norm_names_the_layer_it_cannot_fold():
    model = keras.Sequential(
        [keras.Input((5, 5, 1)), keras.layers.Conv2D(2, 3, activation="relu", name="conv"),
         keras.layers.BatchNormalization(name="bn"), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    with pytest.raises(ValueError, match=r"'bn'.*MergeBatchNorm.*found 'conv' \(linear, relu\)"):
        RelevanceAnalyzer(model, "dtd", canonizers=[MergeBatchNorm()])

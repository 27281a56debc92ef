"""The method registry: every built-in name, user registration, and the errors naming the known ones."""

import keras
import numpy as np
import pytest

from brainage.relevance import (
    COMPOSITES,
    METHODS,
    Analyzer,
    CLRPAnalyzer,
    DeepLiftAnalyzer,
    GradCAMAnalyzer,
    GradientAnalyzer,
    GuidedBackpropAnalyzer,
    IntegratedGradientsAnalyzer,
    MergeBatchNorm,
    ReferenceDTDAnalyzer,
    RelevanceAnalyzer,
    SeedDTDAnalyzer,
    SGLRPAnalyzer,
    SmoothGradAnalyzer,
    analyzer_from_config,
    make_analyzer,
    register_method,
    unregister_method,
)

BUILT_IN = {
    "dtd": RelevanceAnalyzer,
    "dtd_w2": RelevanceAnalyzer,
    "lrp_composite": RelevanceAnalyzer,
    "epsilon_plus": RelevanceAnalyzer,
    "gradient": GradientAnalyzer,
    "gradient_x_input": GradientAnalyzer,
    "guided_backprop": GuidedBackpropAnalyzer,
    "gradcam": GradCAMAnalyzer,
    "integrated_gradients": IntegratedGradientsAnalyzer,
    "dtd_seed": SeedDTDAnalyzer,
    "clrp": CLRPAnalyzer,
    "sglrp": SGLRPAnalyzer,
    "deeplift": DeepLiftAnalyzer,
    "dtd_reference": ReferenceDTDAnalyzer,
    "smoothgrad": SmoothGradAnalyzer,
    "smoothgrad_x_input": SmoothGradAnalyzer,
}
PARAMS = {"gradcam": {"layer": "conv"}, "integrated_gradients": {"steps": 2}, "smoothgrad": {"samples": 2},
          "smoothgrad_x_input": {"samples": 2}}


@pytest.fixture(scope="module")
def small_net():
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [keras.Input((7, 8, 1)), keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
         keras.layers.AveragePooling2D(2, name="pool"), keras.layers.Flatten(name="flatten"),
         keras.layers.Dense(3, name="logits")]
    )
    x = np.random.default_rng(5).uniform(0, 1, (2, 7, 8, 1)).astype("float32")
    return model, x


@pytest.fixture
def registry_restored():
    """Whatever a test registers or replaces is undone (METHODS is process-wide)."""
    before = list(METHODS)
    yield
    for name in [n for n in METHODS if n not in before]:
        unregister_method(name)
    assert list(METHODS) == before


def test_methods_is_the_registry_in_order():
    # the built-in methods first, in this order; a method added later goes after them
    assert tuple(METHODS[: len(BUILT_IN)]) == tuple(BUILT_IN)
    assert METHODS == tuple(METHODS) and METHODS != tuple(METHODS)[1:]
    assert [name for name in METHODS if name in COMPOSITES] == list(COMPOSITES)
    assert "dtd" in METHODS and "lrp9" not in METHODS
    assert repr(METHODS) == repr(tuple(METHODS))


@pytest.mark.parametrize("name", list(BUILT_IN))
def test_make_analyzer_builds_every_method(small_net, name):
    model, x = small_net
    analyzer = make_analyzer(model, name, compile=False, **PARAMS.get(name, {}))
    assert type(analyzer) is BUILT_IN[name]
    assert analyzer.method == name
    if isinstance(analyzer, RelevanceAnalyzer):
        assert analyzer.composite.name == (name if name in COMPOSITES else "dtd")
    if name.startswith("gradient"):
        assert analyzer.times_input is (name == "gradient_x_input")
    if name.startswith("smoothgrad"):
        assert analyzer.smooth_times_input is (name == "smoothgrad_x_input")
    explanation = analyzer.explain(x)
    assert explanation.method == name
    assert explanation.maps.shape == x.shape and np.isfinite(explanation.maps).all()


def test_a_registered_method_is_built_by_name_and_from_config(small_net, registry_restored):
    model, x = small_net

    def tight_dtd(model, **params):
        return RelevanceAnalyzer(model, "dtd", low=0.0, high=0.5, **params)

    register_method("dtd_tight", tight_dtd)
    assert METHODS[-1] == "dtd_tight" and "dtd_tight" in METHODS
    analyzer = make_analyzer(model, "dtd_tight", compile=False)
    assert analyzer.rules["conv"].high == 0.5
    from_config = analyzer_from_config(model, {"name": "dtd_tight", "bn_mode": "canonize", "compile": False})
    assert from_config.canonizers == (MergeBatchNorm(),)
    assert analyzer.explain(x).maps.shape == x.shape
    with pytest.raises(TypeError, match=r"explainer 'dtd_tight': bad parameters \['gamma'\]"):
        make_analyzer(model, "dtd_tight", gamma=0.1)
    assert unregister_method("dtd_tight") is tight_dtd
    assert "dtd_tight" not in METHODS


def test_duplicate_names_are_refused_unless_replaced(small_net, registry_restored):
    model, _ = small_net
    before = tuple(METHODS)
    with pytest.raises(ValueError,
                       match=r"'dtd' is already registered; registered methods: \['dtd', 'dtd_w2'.*'gradcam'"):
        register_method("dtd", GradientAnalyzer)
    assert type(make_analyzer(model, "dtd", compile=False)) is RelevanceAnalyzer
    try:
        register_method("gradient", GuidedBackpropAnalyzer, replace=True)
        assert type(make_analyzer(model, "gradient", compile=False)) is GuidedBackpropAnalyzer
    finally:
        register_method("gradient", GradientAnalyzer, replace=True)  # the built-in factory
    assert type(make_analyzer(model, "gradient", compile=False)) is GradientAnalyzer
    assert METHODS == before  # replacing keeps the name's place


def test_unknown_names_list_the_known_ones(small_net):
    model, _ = small_net
    known = (r"methods: \['dtd', 'dtd_w2', 'lrp_composite', 'epsilon_plus', 'gradient'.*'integrated_gradients', "
             r"'dtd_seed'.*'smoothgrad_x_input'.*\]")
    with pytest.raises(ValueError, match=r"unknown explainer 'lrp9'; " + known):
        make_analyzer(model, "lrp9")
    with pytest.raises(ValueError, match=r"unknown explainer 'lrp9'; " + known):
        unregister_method("lrp9")
    with pytest.raises(ValueError, match=r"unknown explainer 'lrp9'"):
        analyzer_from_config(model, {"name": "lrp9"})


def test_register_method_checks_its_arguments(registry_restored):
    with pytest.raises(ValueError, match="non-empty string"):
        register_method("", GradientAnalyzer)
    with pytest.raises(TypeError, match="'mine'.*not callable"):
        register_method("mine", "GradientAnalyzer")
    assert "mine" not in METHODS
    assert issubclass(BUILT_IN["gradcam"], Analyzer)


def test_dtd_seed_is_the_seeds_method_and_nothing_else(small_net):
    model, x = small_net
    seed = make_analyzer(model, "dtd_seed", compile=False)
    assert seed.canonizers == () and seed.rules["conv"].low == 0.0 and seed.rules["conv"].high == 1.0
    np.testing.assert_array_equal(seed.explain(x).maps, make_analyzer(model, "dtd", compile=False).explain(x).maps)
    with pytest.raises(TypeError, match=r"explainer 'dtd_seed': bad parameters \['bn_mode'\]"):
        make_analyzer(model, "dtd_seed", bn_mode="canonize")
    with pytest.raises(ValueError, match="dtd_seed: the seed explains the plain logit; target 'predicted-vs-mean'"):
        seed.explain(x, target="predicted-vs-mean")

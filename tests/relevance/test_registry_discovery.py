"""Methods register where they are defined: the decorator form, the built-in order kept whatever
the import order, and a method module found by the package's discovery, known to make_analyzer
and to explainer configs with no edit anywhere else."""

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import brainage.relevance as relevance
from brainage.relevance import (
    COMPOSITES,
    METHODS,
    GradientAnalyzer,
    RelevanceAnalyzer,
    analyzer_from_config,
    factory_of,
    make_analyzer,
    register_composite,
    register_method,
    unregister_composite,
    unregister_method,
)
from brainage.relevance.composites import Composite
from brainage.relevance.rules import ZBox, ZPlus

REPO = Path(__file__).resolve().parents[2]
# METHODS before methods registered where they are defined (the registry listed them at its end)
BUILT_IN = ("dtd", "dtd_w2", "lrp_composite", "epsilon_plus", "gradient", "gradient_x_input",
            "guided_backprop", "gradcam", "integrated_gradients", "dtd_seed", "clrp", "sglrp",
            "deeplift", "dtd_reference", "smoothgrad", "smoothgrad_x_input")
DEFINED_IN = {"dtd": "layerwise", "gradient": "gradient_methods", "gradient_x_input": "gradient_methods",
              "guided_backprop": "gradient_methods", "gradcam": "gradient_methods",
              "integrated_gradients": "gradient_methods", "dtd_seed": "layerwise", "clrp": "contrastive",
              "sglrp": "contrastive", "deeplift": "deeplift", "dtd_reference": "dtd_reference",
              "smoothgrad": "smoothgrad", "smoothgrad_x_input": "smoothgrad"}
# A method module as a user adds one: brainage/relevance/<name>.py, nothing else edited.
TWICE_GRADIENT = '''
"""factor × the gradient (a test method)."""
from brainage.relevance.gradient_methods import GradientAnalyzer
from brainage.relevance.registry import register_method


@register_method("twice_gradient")
class TwiceGradientAnalyzer(GradientAnalyzer):
    """``factor`` times the gradient; the other parameters are GradientAnalyzer's."""

    def __init__(self, model, *, factor=2.0, **params):
        super().__init__(model, **params)
        self.method, self.factor = "twice_gradient", factor

    def _result(self, x, head, vjp, n_targets):
        result = super()._result(x, head, vjp, n_targets)
        return {**result, "maps": result["maps"] * self.factor}
'''
CONFIG = """# @package explainer.twice_gradient
name: twice_gradient
factor: 2.0
contrast: null
compile: false
jit_compile: false
"""


def compose_explain(search: Path, *overrides):
    """The explain stage's config with ``search`` (config groups) beside ``configs/``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("explain", overrides=[f"hydra.searchpath=[file://{search}]", *overrides])


@pytest.fixture
def registry_restored():
    """Whatever a test registers is undone (METHODS and COMPOSITES are process-wide)."""
    before, presets = tuple(METHODS), tuple(COMPOSITES)
    yield
    for name in [n for n in COMPOSITES if n not in presets]:
        unregister_composite(name)
    for name in [n for n in METHODS if n not in before]:
        unregister_method(name)
    assert METHODS == before and tuple(COMPOSITES) == presets


@pytest.fixture(scope="module")
def small_net():
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((7, 8, 1)), keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(3, name="logits")])
    return model, np.random.default_rng(5).uniform(0, 1, (2, 7, 8, 1)).astype("float32")


def test_the_built_in_methods_keep_their_order_and_register_where_defined():
    assert tuple(METHODS[: len(BUILT_IN)]) == BUILT_IN
    assert tuple(COMPOSITES)[:4] == BUILT_IN[:4]
    for name, module in DEFINED_IN.items():
        assert factory_of(name).__module__ == f"brainage.relevance.{module}", name
    assert factory_of("gradient") is GradientAnalyzer


def test_the_registry_imports_nothing_from_the_package():
    tree = ast.parse((REPO / "brainage" / "relevance" / "registry.py").read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and name.startswith("brainage")]


def test_the_decorator_registers_and_returns_what_it_decorates(small_net, registry_restored):
    model, x = small_net

    @register_method("tight_dtd")
    def tight_dtd(model, **params):
        """DTD with zB on [0, 0.5]."""
        return RelevanceAnalyzer(model, "dtd", low=0.0, high=0.5, **params)

    @register_method("plain_gradient")
    class PlainGradient(GradientAnalyzer):
        pass

    assert tight_dtd.__name__ == "tight_dtd" and issubclass(PlainGradient, GradientAnalyzer)
    assert METHODS[-2:] == ("tight_dtd", "plain_gradient")
    assert make_analyzer(model, "tight_dtd", compile=False).rules["conv"].high == 0.5
    assert type(make_analyzer(model, "plain_gradient", compile=False)) is PlainGradient
    with pytest.raises(ValueError, match=r"'tight_dtd' is already registered"):
        register_method("tight_dtd")(tight_dtd)
    with pytest.raises(ValueError, match="non-empty string"):
        register_method("")
    with pytest.raises(TypeError, match="'mine'.*not callable"):
        register_method("mine")("GradientAnalyzer")
    with pytest.raises(TypeError, match="'mine'.*not callable"):
        register_method("mine", None)  # the call form with no factory is still an error


def test_order_places_a_method_among_the_built_in_ones(registry_restored):
    before = tuple(METHODS)
    register_method("late", GradientAnalyzer)
    register_method("between", GradientAnalyzer, order=2.5)
    register_method("first", GradientAnalyzer, order=-1)
    assert METHODS == ("first", *before[:3], "between", *before[3:], "late")
    register_method("late", RelevanceAnalyzer, replace=True)  # replacing keeps the place
    assert METHODS[-1] == "late" and factory_of("late") is RelevanceAnalyzer
    register_method("between", GradientAnalyzer, replace=True, order=100)  # after the built-in ones,
    n = len(BUILT_IN)  # before those without an order
    assert METHODS == ("first", *before[:n], "between", *before[n:], "late")


def test_a_registered_composite_is_a_method_at_the_end(small_net, registry_restored):
    model, x = small_net

    @register_composite("zplus_box")
    def zplus_box(low=0.0, high=1.0) -> Composite:
        return Composite([("linear", ZPlus())], first=ZBox(low, high), name="zplus_box")

    assert METHODS[-1] == "zplus_box" and list(COMPOSITES)[-1] == "zplus_box"
    analyzer = make_analyzer(model, "zplus_box", high=0.5, compile=False)
    assert type(analyzer) is RelevanceAnalyzer and analyzer.rules["conv"] == ZBox(0.0, 0.5)
    with pytest.raises(ValueError, match="composite 'zplus_box' is already registered"):
        register_composite("zplus_box")(zplus_box)
    with pytest.raises(ValueError, match="'gradient' is already registered"):
        register_composite("gradient")(zplus_box)  # a method's name is refused, nothing half-done
    assert "gradient" not in COMPOSITES
    assert unregister_composite("zplus_box") is zplus_box
    assert "zplus_box" not in METHODS and "zplus_box" not in COMPOSITES


def test_discovery_imports_public_modules_only(small_net, tmp_path, monkeypatch, registry_restored):
    folder = tmp_path / "methods"
    folder.mkdir()
    (folder / "twice_gradient.py").write_text(TWICE_GRADIENT)
    (folder / "_helper.py").write_text("raise AssertionError('a private module is not imported')\n")
    before = tuple(METHODS)
    monkeypatch.setattr(relevance, "__path__", [*relevance.__path__, str(folder)])
    monkeypatch.delitem(sys.modules, "brainage.relevance.twice_gradient", raising=False)
    try:
        found = relevance.import_public_modules(relevance.__path__, "brainage.relevance.")
        assert "brainage.relevance.twice_gradient" in found
        assert not [name for name in found if name.rpartition(".")[2].startswith("_")]
        assert METHODS == (*before, "twice_gradient")
        assert factory_of("twice_gradient").__module__ == "brainage.relevance.twice_gradient"
        model, x = small_net
        gradient = make_analyzer(model, "gradient", compile=False).explain(x).maps
        twice = make_analyzer(model, "twice_gradient", factor=3.0, compile=False)
        np.testing.assert_allclose(twice.explain(x).maps, 3 * gradient, rtol=1e-6)
        (tmp_path / "search" / "explainer").mkdir(parents=True)
        (tmp_path / "search" / "explainer" / "twice_gradient.yaml").write_text(CONFIG)
        cfg = compose_explain(tmp_path / "search", "explainer=[twice_gradient,gradient]")
        assert list(cfg.explainer) == ["twice_gradient", "gradient"]
        from_config = analyzer_from_config(model, cfg.explainer.twice_gradient)
        np.testing.assert_allclose(from_config.explain(x).maps, 2 * gradient, rtol=1e-6)
    finally:
        sys.modules.pop("brainage.relevance.twice_gradient", None)
        if hasattr(relevance, "twice_gradient"):
            delattr(relevance, "twice_gradient")


@pytest.mark.slow  # a fresh interpreter imports Keras
def test_a_new_method_module_is_one_file_and_one_config(tmp_path):
    """The package copied, one module added to brainage/relevance/ and one YAML file beside the
    explainer configs: a fresh process knows the method, by name and from an explain config."""
    shutil.copytree(REPO / "brainage", tmp_path / "brainage", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "brainage" / "relevance" / "twice_gradient.py").write_text(TWICE_GRADIENT)
    (tmp_path / "search" / "explainer").mkdir(parents=True)
    (tmp_path / "search" / "explainer" / "twice_gradient.yaml").write_text(CONFIG)
    script = textwrap.dedent(f"""
        import keras, numpy as np
        from hydra import compose, initialize_config_dir
        import brainage.relevance as relevance
        from brainage.relevance import METHODS, analyzer_from_config, make_analyzer
        assert relevance.__file__.startswith({str(tmp_path)!r}), relevance.__file__
        assert METHODS[:{len(BUILT_IN)}] == {BUILT_IN!r}, tuple(METHODS)
        assert METHODS[-1] == "twice_gradient", tuple(METHODS)
        model = keras.Sequential([keras.Input((6, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
        assert make_analyzer(model, "twice_gradient", compile=False).method == "twice_gradient"
        with initialize_config_dir(config_dir={str(REPO / "configs")!r}, version_base="1.3"):
            cfg = compose("explain", overrides=["hydra.searchpath=[file://{tmp_path / 'search'}]",
                                                "explainer=[twice_gradient,dtd]"])
        analyzer = analyzer_from_config(model, cfg.explainer.twice_gradient)
        assert analyzer.factor == 2.0 and list(cfg.explainer) == ["twice_gradient", "dtd"]
        x = np.random.default_rng(0).uniform(0, 1, (2, 6, 1)).astype("float32")
        gradient = make_analyzer(model, "gradient", compile=False).explain(x).maps
        np.testing.assert_allclose(analyzer.explain(x).maps, 2 * gradient, rtol=1e-6)
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]

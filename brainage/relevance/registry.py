"""One registry from method name to analyzer factory.

A factory is ``factory(model, **params) -> Analyzer``. The built-in methods (the composite
presets and the gradient methods) are registered here, in the order :data:`METHODS`
lists them; users add their own with :func:`register_method`::

    register_method("my_lrp", lambda model, **p: RelevanceAnalyzer(model, my_composite, **p))
    make_analyzer(model, "my_lrp", bn_mode="canonize")   # and explainer configs with name: my_lrp
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from brainage.relevance.analyzer import Analyzer
from brainage.relevance.composites import COMPOSITES
from brainage.relevance.contrastive import CLRPAnalyzer, SGLRPAnalyzer
from brainage.relevance.deeplift import DeepLiftAnalyzer
from brainage.relevance.dtd_reference import ReferenceDTDAnalyzer
from brainage.relevance.gradient_methods import (
    GradCAMAnalyzer,
    GradientAnalyzer,
    GuidedBackpropAnalyzer,
    IntegratedGradientsAnalyzer,
)
from brainage.relevance.layerwise import RelevanceAnalyzer, SeedDTDAnalyzer
from brainage.relevance.smoothgrad import SmoothGradAnalyzer

AnalyzerFactory = Callable[..., Analyzer]

_FACTORIES: dict[str, AnalyzerFactory] = {}


class _MethodNames(Sequence):
    """Read-only, live view of the registered method names, in registration order."""

    def __getitem__(self, index):
        return tuple(_FACTORIES)[index]

    def __len__(self) -> int:
        return len(_FACTORIES)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_FACTORIES))

    def __contains__(self, name) -> bool:
        return name in _FACTORIES

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None

    def __repr__(self) -> str:
        return repr(tuple(_FACTORIES))


METHODS: Sequence[str] = _MethodNames()
"""Names :func:`make_analyzer` knows, built-in and registered (a live view of the registry)."""


def register_method(name: str, factory: AnalyzerFactory, *, replace: bool = False) -> None:
    """Make ``name`` available to :func:`make_analyzer` and explainer configs.

    Parameters
    ----------
    name : str
    factory : callable
        ``factory(model, **params) -> Analyzer``; a ``TypeError`` it raises is reported as
        bad parameters of ``name``.
    replace : bool
        Allow replacing a registered method (otherwise a duplicate name is an error).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"method name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"method {name!r}: factory {factory!r} is not callable")
    if name in _FACTORIES and not replace:
        raise ValueError(
            f"method {name!r} is already registered; registered methods: {list(METHODS)} "
            "(pass replace=True to replace it)"
        )
    _FACTORIES[name] = factory


def unregister_method(name: str) -> AnalyzerFactory:
    """Remove a registered method; returns its factory."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown explainer {name!r}; methods: {list(METHODS)}")
    return _FACTORIES.pop(name)


def make_analyzer(model, name: str, **params) -> Analyzer:
    """Analyzer for a method name.

    Parameters
    ----------
    model : keras.Model
    name : str
        A registered method (see :data:`METHODS`). Built in: the composite presets ``dtd``,
        ``dtd_w2``, ``lrp_composite``, ``epsilon_plus`` (params ``canonizers`` or
        ``bn_mode``, ``low``, ``high``, ``epsilon``, ``gamma``, ``use_bias``); ``gradient``,
        ``gradient_x_input``, ``guided_backprop``, ``gradcam`` (``layer``),
        ``integrated_gradients`` (``steps``, ``baseline``); ``dtd_seed`` (the seed's DTD,
        nothing to set); ``clrp`` (``dual``, ``clip``, ``composite``, ...), ``sglrp``
        (``composite``, ...); ``deeplift`` and ``dtd_reference`` (``reference``,
        ``canonizers``/``bn_mode``); ``smoothgrad`` and ``smoothgrad_x_input``
        (``noise_level``, ``samples``, ``batch_size``, ``seed``). All take ``compile`` and
        ``jit_compile``, and all but ``dtd_seed``, ``clrp`` and ``sglrp`` a default ``contrast``.
    """
    try:
        factory = _FACTORIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown explainer {name!r}; methods: {list(METHODS)}") from None
    try:
        return factory(model, **params)
    except TypeError as err:
        raise TypeError(f"explainer {name!r}: bad parameters {sorted(params)}: {err}") from None


def _preset_factory(preset: str) -> AnalyzerFactory:
    def factory(model, **params) -> Analyzer:
        return RelevanceAnalyzer(model, preset, **params)

    factory.__name__ = factory.__qualname__ = preset
    factory.__doc__ = f"RelevanceAnalyzer with the {preset!r} composite preset."
    return factory


def _gradient_x_input(model, **params) -> Analyzer:
    """Gradient × input."""
    return GradientAnalyzer(model, times_input=True, **params)


def _smoothgrad_x_input(model, **params) -> Analyzer:
    """SmoothGrad × input."""
    return SmoothGradAnalyzer(model, times_input=True, **params)


for _preset in COMPOSITES:
    register_method(_preset, _preset_factory(_preset))
register_method("gradient", GradientAnalyzer)
register_method("gradient_x_input", _gradient_x_input)
register_method("guided_backprop", GuidedBackpropAnalyzer)
register_method("gradcam", GradCAMAnalyzer)
register_method("integrated_gradients", IntegratedGradientsAnalyzer)
register_method("dtd_seed", SeedDTDAnalyzer)
register_method("clrp", CLRPAnalyzer)
register_method("sglrp", SGLRPAnalyzer)
register_method("deeplift", DeepLiftAnalyzer)
register_method("dtd_reference", ReferenceDTDAnalyzer)
register_method("smoothgrad", SmoothGradAnalyzer)
register_method("smoothgrad_x_input", _smoothgrad_x_input)
del _preset

"""One registry from method name to analyzer factory.

A factory is ``factory(model, **params) -> Analyzer``. Each method registers itself where it is
defined, with :func:`register_method` as a decorator on the class or function that builds it::

    @register_method("gradient", order=4)
    class GradientAnalyzer(Analyzer): ...

The composite presets register through :func:`brainage.relevance.composites.register_composite`.
``brainage.relevance`` imports every public module of the package when it is imported
(discovery), so a method in a module of its own, ``brainage/relevance/<name>.py``, is known to
:func:`make_analyzer`, explainer configs and the stages without an edit anywhere else. Users add
their own with the same function, as a decorator or called::

    register_method("my_lrp", lambda model, **p: RelevanceAnalyzer(model, my_composite, **p))
    make_analyzer(model, "my_lrp", bn_mode="canonize")   # and explainer configs with name: my_lrp

This module imports nothing from the package, so any module may register here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

AnalyzerFactory = Callable[..., object]
"""``factory(model, **params) -> Analyzer`` (:class:`brainage.relevance.analyzer.Analyzer`)."""

_FACTORIES: dict[str, AnalyzerFactory] = {}  # kept in METHODS order
_PLACES: dict[str, tuple] = {}  # name -> sort key: (0, order, n) with an order, else (1, 0, n)
_REGISTRATIONS = itertools.count()
_DECORATE = object()  # register_method's factory when used as a decorator


class _MethodNames(Sequence):
    """Read-only, live view of the registered method names, in :data:`METHODS` order."""

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
"""Names :func:`make_analyzer` knows, built-in and registered (a live view of the registry).

The built-in methods come first, in the order their ``order=`` gives (whatever order their
modules are imported in); then every method registered without ``order``, in registration order.
"""


def register_method(name: str, factory: AnalyzerFactory = _DECORATE, *, replace: bool = False,
                    order: int | None = None):
    """Make ``name`` available to :func:`make_analyzer` and explainer configs.

    Called with a factory it registers it (and returns ``None``); called without one it returns
    a decorator that registers the class or function it decorates and returns it unchanged::

        @register_method("gradient_x_input", order=5)
        def _gradient_x_input(model, **params): ...

    Parameters
    ----------
    name : str
    factory : callable
        ``factory(model, **params) -> Analyzer`` (an :class:`~brainage.relevance.Analyzer`
        subclass is one); a ``TypeError`` it raises is reported as bad parameters of ``name``.
        Describe the parameters in its docstring: :func:`make_analyzer` points there.
    replace : bool
        Allow replacing a registered method (otherwise a duplicate name is an error). The
        replaced name keeps its place in :data:`METHODS` unless ``order`` is given.
    order : int, optional
        The method's place among the built-in methods (their position in :data:`METHODS`; ties
        go in registration order). Leave it out and the method goes at the end.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"method name must be a non-empty string, got {name!r}")
    if factory is _DECORATE:
        def decorate(target: AnalyzerFactory) -> AnalyzerFactory:
            _register(name, target, replace, order)
            return target

        return decorate
    _register(name, factory, replace, order)
    return None


def _register(name: str, factory: AnalyzerFactory, replace: bool, order: int | None) -> None:
    if not callable(factory):
        raise TypeError(f"method {name!r}: factory {factory!r} is not callable")
    if name in _FACTORIES and not replace:
        raise ValueError(
            f"method {name!r} is already registered; registered methods: {list(METHODS)} "
            "(pass replace=True to replace it)"
        )
    if order is not None:
        _PLACES[name] = (0, order, next(_REGISTRATIONS))
    elif name not in _PLACES:
        _PLACES[name] = (1, 0, next(_REGISTRATIONS))
    _FACTORIES[name] = factory
    in_order = sorted(_FACTORIES.items(), key=lambda item: _PLACES[item[0]])
    _FACTORIES.clear()
    _FACTORIES.update(in_order)


def unregister_method(name: str) -> AnalyzerFactory:
    """Remove a registered method; returns its factory."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown explainer {name!r}; methods: {list(METHODS)}")
    del _PLACES[name]
    return _FACTORIES.pop(name)


def factory_of(name: str) -> AnalyzerFactory:
    """The factory registered as ``name``; its docstring describes the method's parameters."""
    try:
        return _FACTORIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown explainer {name!r}; methods: {list(METHODS)}") from None


def make_analyzer(model, name: str, **params):
    """Analyzer for a method name.

    Parameters
    ----------
    model : keras.Model
    name : str
        A registered method: one of :data:`METHODS` (``print(list(METHODS))``).
    **params
        The method's parameters, as an explainer config gives them (all but ``name``). They are
        its factory's, described in the factory's docstring: ``help(factory_of(name))`` (for a
        class, e.g. ``help(GradientAnalyzer)``; a composite preset takes
        :class:`~brainage.relevance.RelevanceAnalyzer`'s and its preset function's).

    Returns
    -------
    Analyzer
    """
    factory = factory_of(name)
    try:
        return factory(model, **params)
    except TypeError as err:
        raise TypeError(f"explainer {name!r}: bad parameters {sorted(params)}: {err}") from None


__all__ = ["METHODS", "AnalyzerFactory", "factory_of", "make_analyzer", "register_method",
           "unregister_method"]

"""Composites: which rule explains which Dense/Conv layer.

A :class:`Composite` maps layers to rules by name (exact or glob), by position (first =
the layer touching the input, last = the output layer) and by type; presets are
composites with names users recognise (``dtd``, ``dtd_w2``, ``lrp_composite``,
``epsilon_plus``), each registered where it is defined with :func:`register_composite`, which
also makes it a method of the same name. Only Dense/Conv layers take rules: ReLU, Dropout and
Flatten/Reshape pass relevance on, average pooling uses LRP-0, max pooling is winner-take-all and
BatchNormalization follows the analyzer's canonizers.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from brainage.relevance.registry import METHODS, unregister_method
from brainage.relevance.rules import LRP0, Epsilon, Gamma, Rule, WSquare, ZBox, ZPlus


@dataclass(frozen=True)
class LayerInfo:
    """What a selector may look at to choose a rule for one Dense/Conv layer.

    ``index`` counts Dense/Conv layers from the input (0 = first); ``kind_index`` counts
    within the same kind (``"dense"`` or ``"conv"``).
    """

    name: str
    layer: object
    kind: str
    index: int
    count: int
    kind_index: int
    kind_count: int

    @property
    def is_first(self) -> bool:
        return self.index == 0

    @property
    def is_last(self) -> bool:
        return self.index == self.count - 1


Selector = str | type | Callable[[LayerInfo], bool]


def _matches(selector: Selector, info: LayerInfo) -> bool:
    if isinstance(selector, str):
        if selector in ("dense", "conv"):
            return info.kind == selector
        if selector == "linear":
            return True
        raise ValueError(f"type selector {selector!r}: use 'dense', 'conv', 'linear' or a class")
    if isinstance(selector, type):
        return isinstance(info.layer, selector)
    return bool(selector(info))


# How Add/Subtract split relevance (see Composite's ``merge``).
MERGES = ("contribution", "positive")


class Composite:
    """Assign rules to Dense/Conv layers.

    Parameters
    ----------
    layer_map : sequence of (selector, Rule)
        Checked in order; the first match wins. A selector is ``"dense"``, ``"conv"``,
        ``"linear"``, a Keras layer class, or ``callable(LayerInfo) -> bool``.
    name_map : mapping of str to Rule
        Layer name or glob pattern (``"block1_*"``) to rule; beats everything else.
    first, last : Rule, optional
        Rule for the first (input-side) / last (output) Dense/Conv layer.
    default : Rule, optional
        Used when nothing else matches; without it an unmatched layer raises.
    name : str
        Shown in ``repr`` and reports.
    merge : {"contribution", "positive"}
        How Add/Subtract in a branching graph split relevance among their inputs:
        ``"contribution"``, ``z_i / Σ_k z_k`` (LRP-0 on the sum); ``"positive"``, ``z_i⁺ / Σ_k z_k⁺``
        (z⁺ on the sum, falling back to ``z_i / Σ_k z_k`` where no input is positive). Both
        shares sum to one. Under z⁺ below a merge, ``"positive"`` is what conserves: an input
        that is a pre-activation gets relevance only where it is positive, so it has a positive
        contribution to hand it to (a negative ``z_i`` with relevance would be a dead unit).

    Examples
    --------
    >>> Composite([("dense", Epsilon(0.1)), ("conv", ZPlus())], first=ZBox(0.0, 1.0))
    """

    def __init__(
        self,
        layer_map: Sequence[tuple[Selector, Rule]] = (),
        name_map: Mapping[str, Rule] | None = None,
        first: Rule | None = None,
        last: Rule | None = None,
        default: Rule | None = None,
        name: str = "custom",
        merge: str = "contribution",
    ):
        if merge not in MERGES:
            raise ValueError(f"composite {name!r}: merge must be one of {MERGES}, got {merge!r}")
        self.merge = merge
        self.layer_map = list(layer_map)
        self.name_map = dict(name_map or {})
        self.first = first
        self.last = last
        self.default = default
        self.name = name

    def rule_for(self, info: LayerInfo) -> Rule:
        """The rule for one layer; raises ``ValueError`` naming it when none applies."""
        for pattern, rule in self.name_map.items():
            if info.name == pattern or fnmatch.fnmatchcase(info.name, pattern):
                return rule
        if self.first is not None and info.is_first:
            return self.first
        if self.last is not None and info.is_last:
            return self.last
        for selector, rule in self.layer_map:
            if _matches(selector, info):
                return rule
        if self.default is not None:
            return self.default
        raise ValueError(
            f"composite {self.name!r}: no rule for layer {info.name!r} "
            f"({type(info.layer).__name__}); add it to layer_map/name_map or set default"
        )

    def assign(self, steps) -> dict[str, Rule]:
        """Rules for every linear step of a parsed chain, keyed by layer name."""
        linear = [s for s in steps if s.kind == "linear"]
        # Conv3DTranspose (op "conv_transpose") is a convolution for the composite's selectors.
        family = {s.name: "dense" if s.op == "dense" else "conv" for s in linear}
        counts = {k: sum(f == k for f in family.values()) for k in ("dense", "conv")}
        seen = {"dense": 0, "conv": 0}
        rules = {}
        for index, step in enumerate(linear):
            info = LayerInfo(
                name=step.name,
                layer=step.layer,
                kind=family[step.name],
                index=index,
                count=len(linear),
                kind_index=seen[family[step.name]],
                kind_count=counts[family[step.name]],
            )
            seen[family[step.name]] += 1
            rules[step.name] = self.rule_for(info)
        return rules

    def __repr__(self):
        parts = [f"name={self.name!r}"]
        if self.name_map:
            parts.append(f"name_map={self.name_map!r}")
        if self.first is not None:
            parts.append(f"first={self.first!r}")
        if self.last is not None:
            parts.append(f"last={self.last!r}")
        if self.layer_map:
            shown = [(getattr(s, "__name__", s), r) for s, r in self.layer_map]
            parts.append(f"layer_map={shown!r}")
        if self.default is not None:
            parts.append(f"default={self.default!r}")
        if self.merge != "contribution":
            parts.append(f"merge={self.merge!r}")
        return f"Composite({', '.join(parts)})"


COMPOSITES: dict[str, Callable[..., Composite]] = {}
"""The presets by name, in registration order (:func:`register_composite` adds one)."""

_PRESET_ORDER: dict[str, int | None] = {}
_WATCHERS: list[Callable[[str, int | None, bool], None]] = []


def register_composite(name: str, *, order: int | None = None, replace: bool = False):
    """Decorator: the function (``**params -> Composite``) becomes the preset ``name``.

    The preset is an entry of :data:`COMPOSITES` (:func:`get_composite`,
    ``RelevanceAnalyzer(model, name)``) and a method of the same name
    (``make_analyzer(model, name)``): :mod:`brainage.relevance.layerwise` registers one for every
    preset, those registered before it is imported and after. ``order`` and ``replace`` are
    :func:`~brainage.relevance.registry.register_method`'s: a new preset leaves ``order`` out
    and goes at the end of ``METHODS``.
    """
    def decorate(factory: Callable[..., Composite]) -> Callable[..., Composite]:
        if name in COMPOSITES and not replace:
            raise ValueError(f"composite {name!r} is already registered; presets: "
                             f"{list(COMPOSITES)} (pass replace=True to replace it)")
        for watcher in _WATCHERS:
            watcher(name, order, replace)
        COMPOSITES[name] = factory
        _PRESET_ORDER[name] = order if order is not None else _PRESET_ORDER.get(name)
        return factory

    return decorate


def unregister_composite(name: str) -> Callable[..., Composite]:
    """Remove the preset ``name`` and its method; returns the preset's function."""
    if name not in COMPOSITES:
        raise ValueError(f"unknown composite {name!r}; presets: {sorted(COMPOSITES)}")
    if name in METHODS:
        unregister_method(name)
    del _PRESET_ORDER[name]
    return COMPOSITES.pop(name)


def on_composite(watcher: Callable[[str, int | None, bool], None]) -> None:
    """Call ``watcher(name, order, replace)`` for every preset registered so far and every later
    one. ``layerwise`` makes each preset a method this way: it imports this module, so this
    module cannot import it."""
    for name, order in _PRESET_ORDER.items():
        watcher(name, order, False)
    _WATCHERS.append(watcher)


@register_composite("dtd", order=0)
def dtd(low=0.0, high=1.0) -> Composite:
    """Deep Taylor decomposition (seed 000): z⁺ on every hidden layer (and on merges), zᴮ at the
    input."""
    return Composite([("linear", ZPlus())], first=ZBox(low, high), name="dtd", merge="positive")


@register_composite("dtd_w2", order=1)
def dtd_w2() -> Composite:
    """Deep Taylor decomposition with the w² rule at the input (unbounded input domain)."""
    return Composite([("linear", ZPlus())], first=WSquare(), name="dtd_w2", merge="positive")


def _upper_conv(info: LayerInfo) -> bool:
    return info.kind == "conv" and info.kind_index >= info.kind_count // 2


@register_composite("lrp_composite", order=2)
def lrp_composite(epsilon=0.25, gamma=0.25, low=0.0, high=1.0, use_bias=True) -> Composite:
    """The seed-001 recipe: LRP-0 on dense (upper) layers, LRP-ε on the upper half of the
    conv layers, LRP-γ on the lower half, zᴮ at the input layer.

    ``use_bias=False`` leaves biases out of the LRP-0/ε/γ denominators (bias-free rules): after
    BatchNorm canonisation the folded shift then no longer absorbs relevance, and the map
    conserves up to ε's share. With biases, what they absorb is each layer's sink.
    """
    return Composite(
        [("dense", LRP0(use_bias)), (_upper_conv, Epsilon(epsilon, use_bias)),
         ("conv", Gamma(gamma, use_bias))],
        first=ZBox(low, high),
        name="lrp_composite",
    )


@register_composite("epsilon_plus", order=3)
def epsilon_plus(epsilon=0.25, low=0.0, high=1.0, use_bias=True) -> Composite:
    """Zennit's EpsilonPlus with a box input layer: ε on dense, z⁺ on conv, zᴮ at the input.

    ``use_bias=False``: bias-free ε on the dense layers (see :func:`lrp_composite`).
    """
    return Composite(
        [("dense", Epsilon(epsilon, use_bias)), ("conv", ZPlus())], first=ZBox(low, high),
        name="epsilon_plus", merge="positive",
    )


def get_composite(name: str, **params) -> Composite:
    """Build a preset composite by name (one of :data:`COMPOSITES`)."""
    try:
        factory = COMPOSITES[name]
    except KeyError:
        raise ValueError(f"unknown composite {name!r}; presets: {sorted(COMPOSITES)}") from None
    return factory(**params)


__all__ = [
    "Composite",
    "LayerInfo",
    "dtd",
    "dtd_w2",
    "lrp_composite",
    "epsilon_plus",
    "get_composite",
    "register_composite",
    "unregister_composite",
    "on_composite",
    "COMPOSITES",
]

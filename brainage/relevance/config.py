"""Build analyzers from a method name or a flat config (``configs/explainer/*.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping

from brainage.relevance.analyzer import Analyzer, RelevanceAnalyzer
from brainage.relevance.composites import COMPOSITES
from brainage.relevance.gradient_methods import (
    GradCAMAnalyzer,
    GradientAnalyzer,
    GuidedBackpropAnalyzer,
    IntegratedGradientsAnalyzer,
)

METHODS = (
    *COMPOSITES,
    "gradient",
    "gradient_x_input",
    "guided_backprop",
    "gradcam",
    "integrated_gradients",
)


def make_analyzer(model, name: str, **params) -> Analyzer:
    """Analyzer for a method name.

    Parameters
    ----------
    model : keras.Model
    name : str
        A composite preset (``dtd``, ``dtd_w2``, ``lrp_composite``, ``epsilon_plus``; params
        ``bn_mode``, ``low``, ``high``, ``epsilon``, ``gamma``) or ``gradient``,
        ``gradient_x_input``, ``guided_backprop``, ``gradcam`` (``layer``),
        ``integrated_gradients`` (``steps``, ``baseline``). All take ``compile`` and
        ``jit_compile``.
    """
    try:
        if name in COMPOSITES:
            return RelevanceAnalyzer(model, name, **params)
        if name == "gradient":
            return GradientAnalyzer(model, **params)
        if name == "gradient_x_input":
            return GradientAnalyzer(model, times_input=True, **params)
        if name == "guided_backprop":
            return GuidedBackpropAnalyzer(model, **params)
        if name == "gradcam":
            return GradCAMAnalyzer(model, **params)
        if name == "integrated_gradients":
            return IntegratedGradientsAnalyzer(model, **params)
    except TypeError as err:
        raise TypeError(f"explainer {name!r}: bad parameters {sorted(params)}: {err}") from None
    raise ValueError(f"unknown explainer {name!r}; methods: {list(METHODS)}")


def analyzer_from_config(model, cfg: Mapping) -> Analyzer:
    """Analyzer from a flat config mapping: ``name`` plus that method's parameters.

    Accepts a plain dict or an OmegaConf ``DictConfig`` (e.g. Hydra's ``cfg.explainer``).
    """
    if hasattr(cfg, "_metadata"):  # OmegaConf DictConfig
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)
    params = dict(cfg)
    if "name" not in params:
        raise ValueError(f"explainer config needs a 'name' key, got keys {sorted(params)}")
    name = params.pop("name")
    return make_analyzer(model, name, **params)

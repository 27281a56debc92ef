"""Relevance engine: explain a Keras model's logit as a map over its input.

Deep Taylor decomposition (z⁺ hidden, zᴮ/w² input), LRP composites and gradient-based
methods behind one interface::

    analyzer = make_analyzer(model, "dtd")            # or RelevanceAnalyzer(model, "dtd")
    explanation = analyzer.explain(x, target="predicted")
    explanation.maps, explanation.rel_error, explanation.trace
"""

from brainage.relevance._backend import backend_name, compile_function
from brainage.relevance.analyzer import (
    Analyzer,
    Explanation,
    RelevanceAnalyzer,
    compare_bn_modes,
    propagate,
)
from brainage.relevance.composites import (
    COMPOSITES,
    Composite,
    LayerInfo,
    dtd,
    dtd_w2,
    epsilon_plus,
    get_composite,
    lrp_composite,
)
from brainage.relevance.config import METHODS, analyzer_from_config, make_analyzer
from brainage.relevance.gradient_methods import (
    GradCAMAnalyzer,
    GradientAnalyzer,
    GuidedBackpropAnalyzer,
    IntegratedGradientsAnalyzer,
)
from brainage.relevance.rules import (
    LRP0,
    RULES,
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    Rule,
    WSquare,
    ZBox,
    ZPlus,
)

__all__ = [
    "Analyzer",
    "Explanation",
    "RelevanceAnalyzer",
    "GradientAnalyzer",
    "GuidedBackpropAnalyzer",
    "IntegratedGradientsAnalyzer",
    "GradCAMAnalyzer",
    "make_analyzer",
    "analyzer_from_config",
    "backend_name",
    "compile_function",
    "compare_bn_modes",
    "propagate",
    "METHODS",
    "Composite",
    "LayerInfo",
    "COMPOSITES",
    "get_composite",
    "dtd",
    "dtd_w2",
    "lrp_composite",
    "epsilon_plus",
    "Rule",
    "RULES",
    "LRP0",
    "Epsilon",
    "Gamma",
    "AlphaBeta",
    "ZPlus",
    "ZBox",
    "WSquare",
    "Flat",
]

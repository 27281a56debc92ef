"""Relevance engine: explain a Keras model's logit as a map over its input.

Deep Taylor decomposition (z⁺ hidden, zᴮ/w² input), LRP composites, contrastive LRP (CLRP,
SGLRP), reference-based attribution (DeepLIFT-Rescale, DTD rooted at a reference) and
gradient-based methods (gradient, SmoothGrad, integrated gradients, guided backprop, Grad-CAM)
behind one interface::

    analyzer = make_analyzer(model, "dtd")            # or RelevanceAnalyzer(model, "dtd")
    explanation = analyzer.explain(x, target="predicted")     # or "predicted-vs-mean", ...
    explanation.maps, explanation.rel_error, explanation.trace, explanation.sinks

Targets may contrast the explained class with the others (``"-vs-<k>"``, ``"-vs-runnerup"``,
``"-vs-mean"``, ``"-logodds"``; :mod:`brainage.relevance.targets`).

Any Keras functional graph is explained by every built-in method: residual Adds, Subtract,
Concatenate, fan-out, UpSampling, Cropping, ZeroPadding, Conv*Transpose, Rescaling, max pooling
(:mod:`brainage.relevance.dag_propagation`; the reference methods walk the same graph,
:mod:`brainage.relevance.reference`). A per-voxel output (a segmentation network) is explained for
a region of it by the layer-wise, reference and plain gradient methods:
``analyzer.explain(x, target=<channel>, output_mask=mask)`` explains ``Σ_{v∈mask} z_{v,c}``.

Methods are looked up in one registry (``METHODS``; add your own with ``register_method``). Each
method registers itself where it is defined (``@register_method("<name>")``; the composite presets
with ``@register_composite``), and importing this package imports every public module of it
(:func:`brainage.discovery.import_public_modules`), so a
method in a new module ``brainage/relevance/<name>.py`` is known
everywhere without an edit here. BatchNormalization handling is a canonizer handed to the analyzer
(``make_analyzer(model, "dtd", canonizers=[MergeBatchNorm()])``, alias ``bn_mode="canonize"``).
``compile_function`` and ``backend_name`` compile a function / name the backend the way the
engine does (for benchmarks).
"""

from brainage.discovery import import_public_modules
from brainage.relevance._backend import backend_name, compile_function
from brainage.relevance.analyzer import Analyzer
from brainage.relevance.canonizers import Canonizer, MergeBatchNorm
from brainage.relevance.comparison import compare_bn_modes
from brainage.relevance.composites import (
    COMPOSITES,
    Composite,
    LayerInfo,
    dtd,
    dtd_w2,
    epsilon_plus,
    get_composite,
    lrp_composite,
    register_composite,
    unregister_composite,
)
from brainage.relevance.config import analyzer_from_config
from brainage.relevance.contrastive import CLRPAnalyzer, SGLRPAnalyzer
from brainage.relevance.deeplift import DeepLiftAnalyzer
from brainage.relevance.dtd_reference import ReferenceDTDAnalyzer
from brainage.relevance.explanation import Explanation
from brainage.relevance.gradient_methods import (
    GradCAMAnalyzer,
    GradientAnalyzer,
    GuidedBackpropAnalyzer,
    IntegratedGradientsAnalyzer,
)
from brainage.relevance.layerwise import RelevanceAnalyzer, SeedDTDAnalyzer
from brainage.relevance.propagation import propagate
from brainage.relevance.reference import ReferenceAnalyzer
from brainage.relevance.registry import (
    METHODS,
    factory_of,
    make_analyzer,
    register_method,
    unregister_method,
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
from brainage.relevance.smoothgrad import SmoothGradAnalyzer
from brainage.relevance.targets import CONTRASTS, TargetSpec, parse_target

__all__ = [
    "Analyzer",
    "Explanation",
    "RelevanceAnalyzer",
    "GradientAnalyzer",
    "GuidedBackpropAnalyzer",
    "IntegratedGradientsAnalyzer",
    "GradCAMAnalyzer",
    "SeedDTDAnalyzer",
    "CLRPAnalyzer",
    "SGLRPAnalyzer",
    "ReferenceAnalyzer",
    "DeepLiftAnalyzer",
    "ReferenceDTDAnalyzer",
    "SmoothGradAnalyzer",
    "TargetSpec",
    "parse_target",
    "CONTRASTS",
    "make_analyzer",
    "factory_of",
    "analyzer_from_config",
    "register_method",
    "unregister_method",
    "METHODS",
    "Canonizer",
    "MergeBatchNorm",
    "compare_bn_modes",
    "propagate",
    "compile_function",
    "backend_name",
    "Composite",
    "LayerInfo",
    "COMPOSITES",
    "get_composite",
    "register_composite",
    "unregister_composite",
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


import_public_modules(__path__, __name__ + ".")

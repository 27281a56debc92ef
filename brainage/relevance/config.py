"""Build an analyzer from a flat explainer config (``configs/explainer/*.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping

from brainage.relevance.analyzer import Analyzer
from brainage.relevance.registry import make_analyzer


def analyzer_from_config(model, cfg: Mapping) -> Analyzer:
    """Analyzer from a flat config mapping: ``name`` plus that method's parameters.

    ``name`` is looked up in the method registry (:func:`~brainage.relevance.make_analyzer`);
    BatchNormalization handling is the ``bn_mode`` key (``passthrough`` or ``canonize``).

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

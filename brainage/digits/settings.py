"""The digits experiment's settings, read once from the ``digits`` config and checked."""
from __future__ import annotations

from dataclasses import dataclass

from brainage.digits.networks import cnn_feature_size
from brainage.errors import BrainageError, ExplainError


def _count(key: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise BrainageError(f"digits: {key} must be an integer >= {low}, got {value!r}")
    return value


def _sizes(key: str, values, low: int = 1) -> tuple[int, ...]:
    if isinstance(values, (str, int)) or values is None or not len(values):
        raise BrainageError(f"digits: {key} must be a non-empty list of integers, got {values!r}")
    return tuple(_count(key, v, low) for v in values)


def _rate(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise BrainageError(f"digits: {key} must be a positive number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FitSettings:
    """How one network is trained: ``epochs``, ``batch_size``, ``learning_rate`` (Adam)."""

    epochs: int
    batch_size: int
    learning_rate: float

    @classmethod
    def from_cfg(cls, group: str, cfg) -> FitSettings:
        return cls(_count(f"{group}.epochs", cfg.epochs), _count(f"{group}.batch_size", cfg.batch_size),
                   _rate(f"{group}.learning_rate", cfg.learning_rate))


@dataclass(frozen=True)
class DigitsSettings:
    """The digits experiment (``configs/digits.yaml`` documents each key).

    Attributes
    ----------
    seed : int
        Seeds the subset, the split, the weights and the example digits.
    size, test_fraction, limit
        The ``data`` group: image edge, stratified test share, digits used (None: all).
    dense_hidden : tuple of int
        Hidden layer widths of the dense network.
    cnn_filters, cnn_pool_after, cnn_dense_units
        The CNN's convolutions, how many of them are followed by pooling, its dense layer (0: none).
    dense_fit, cnn_fit : FitSettings
        Training of each network.
    explainer : dict
        The analyzer's config (``name`` and parameters).
    examples : int
        Correct test digits shown per network.
    anti_subset : int or None
        Correct test digits in the anti-heatmap statistics (None: all).
    """

    seed: int
    size: int
    test_fraction: float
    limit: int | None
    dense_hidden: tuple[int, ...]
    dense_fit: FitSettings
    cnn_filters: tuple[int, ...]
    cnn_pool_after: int
    cnn_dense_units: int
    cnn_fit: FitSettings
    explainer: dict
    examples: int
    anti_subset: int | None

    @classmethod
    def from_cfg(cls, cfg) -> DigitsSettings:
        """Read and check the composed ``digits`` config; a bad value raises a one-line
        :class:`~brainage.errors.BrainageError` naming the key."""
        from omegaconf import OmegaConf

        fraction = cfg.data.test_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise BrainageError(f"digits: data.test_fraction must be in (0, 1), got {fraction!r}")
        settings = cls(
            seed=_count("seed", cfg.seed, 0),
            size=_count("data.size", cfg.data.size, 8),
            test_fraction=float(fraction),
            limit=None if cfg.data.limit is None else _count("data.limit", cfg.data.limit),
            dense_hidden=_sizes("dense.hidden", cfg.dense.hidden),
            dense_fit=FitSettings.from_cfg("dense", cfg.dense),
            cnn_filters=_sizes("cnn.filters", cfg.cnn.filters),
            cnn_pool_after=_count("cnn.pool_after", cfg.cnn.pool_after, 0),
            cnn_dense_units=_count("cnn.dense_units", cfg.cnn.dense_units, 0),
            cnn_fit=FitSettings.from_cfg("cnn", cfg.cnn),
            explainer=OmegaConf.to_container(cfg.explainer, resolve=True),
            examples=_count("examples", cfg.examples),
            anti_subset=None if cfg.anti_subset is None else _count("anti_subset", cfg.anti_subset),
        )
        settings._check_cnn_fits()
        settings._check_explainer()
        return settings

    def _check_cnn_fits(self) -> None:
        edge = cnn_feature_size(self.size, len(self.cnn_filters), self.cnn_pool_after)
        if edge < 1:
            raise BrainageError(f"digits: cnn.filters={list(self.cnn_filters)} with cnn.pool_after="
                                f"{self.cnn_pool_after} leave no pixel of {self.size}x{self.size} digits "
                                "(fewer convolutions, less pooling, or a larger data.size)")

    def _check_explainer(self) -> None:
        # deferred: imports keras, which starts TensorFlow/JAX
        from brainage.relevance import METHODS

        name = self.explainer.get("name") if isinstance(self.explainer, dict) else None
        if name not in METHODS:
            raise ExplainError(f"digits: explainer.name must be one of {list(METHODS)}, got {name!r}")

"""The digits experiment's settings, read once from the ``digits`` config and checked."""
from __future__ import annotations

from dataclasses import dataclass

from brainage.config_values import ConfigReader, MustBe, at_least, non_empty, positive, real
from brainage.digits.networks import cnn_feature_size
from brainage.errors import BrainageError, ExplainError


def _count(reader: ConfigReader, key: str, low: int = 1, optional: bool = False) -> int | None:
    return reader.value(key, at_least(low), f"an integer >= {low}", optional)


def _sizes(reader: ConfigReader, key: str) -> tuple[int, ...]:
    sizes = reader.value(key, non_empty(), "a non-empty list of integers")
    return tuple(reader.check(key, v, at_least(1), "an integer >= 1") for v in sizes)


def _fraction(value) -> float:
    fraction = real(value)
    if not 0 < fraction < 1:
        raise ValueError(value)
    return fraction


@dataclass(frozen=True)
class FitSettings:
    """How one network is trained: ``epochs``, ``batch_size``, ``learning_rate`` (Adam)."""

    epochs: int
    batch_size: int
    learning_rate: float

    @classmethod
    def from_reader(cls, fit: ConfigReader) -> FitSettings:
        return cls(_count(fit, "epochs"), _count(fit, "batch_size"),
                   fit.value("learning_rate", positive, "a positive number"))


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

        digits = ConfigReader(cfg, "", BrainageError, MustBe("digits"))
        data, dense, cnn = (digits.block(key, "a mapping") for key in ("data", "dense", "cnn"))
        settings = cls(
            seed=_count(digits, "seed", 0),
            size=_count(data, "size", 8),
            test_fraction=data.value("test_fraction", _fraction, "in (0, 1)"),
            limit=_count(data, "limit", optional=True),
            dense_hidden=_sizes(dense, "hidden"),
            dense_fit=FitSettings.from_reader(dense),
            cnn_filters=_sizes(cnn, "filters"),
            cnn_pool_after=_count(cnn, "pool_after", 0),
            cnn_dense_units=_count(cnn, "dense_units", 0),
            cnn_fit=FitSettings.from_reader(cnn),
            explainer=OmegaConf.to_container(cfg.explainer, resolve=True),
            examples=_count(digits, "examples"),
            anti_subset=_count(digits, "anti_subset", optional=True),
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

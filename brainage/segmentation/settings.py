"""The U-Net experiment's settings, read once from the ``unet`` config and checked."""
from __future__ import annotations

from dataclasses import dataclass

from brainage.errors import SegmentationError
from brainage.neuro.nifti import DisplayRule
from brainage.segmentation.network import POOLS

# Explainers that explain a region of a per-voxel output (Analyzer.supports_regions), checked here
# so that a bad method fails before training rather than after.
REGION_METHODS = ("dtd", "dtd_w2", "lrp_composite", "epsilon_plus", "gradient", "gradient_x_input",
                  "guided_backprop")


def _count(key: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SegmentationError(f"unet: {key} must be an integer >= {low}, got {value!r}")
    return value


def _number(key: str, value, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (positive and not value > 0):
        kind = "a positive number" if positive else "a number"
        raise SegmentationError(f"unet: {key} must be {kind}, got {value!r}")
    return float(value)


def _list(key: str, values, length: int | None = None) -> list:
    if isinstance(values, (str, int, float)) or values is None or not len(values) \
            or (length is not None and len(values) != length):
        size = f"{length} " if length else "a non-empty list of "
        raise SegmentationError(f"unet: {key} must be {size}values, got {values!r}")
    return list(values)


def _flag(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise SegmentationError(f"unet: {key} must be true or false, got {value!r}")
    return value


def _choice(key: str, value, choices) -> str:
    if value not in choices:
        raise SegmentationError(f"unet: {key} must be one of {list(choices)}, got {value!r}")
    return value


def _display_rule(cfg) -> DisplayRule:
    try:
        return DisplayRule(_number("display.low_percentile", cfg.low_percentile),
                           _number("display.high_percentile", cfg.high_percentile),
                           _number("display.brain_threshold", cfg.brain_threshold))
    except ValueError as err:
        raise SegmentationError(f"unet: {err}") from None


@dataclass(frozen=True)
class FitSettings:
    """Training: ``epochs``, ``batch_size``, ``learning_rate`` (Adam), ``max_train_subjects``."""

    epochs: int
    batch_size: int
    learning_rate: float
    max_train_subjects: int | None

    @classmethod
    def from_cfg(cls, cfg) -> FitSettings:
        most = cfg.max_train_subjects
        return cls(_count("fit.epochs", cfg.epochs), _count("fit.batch_size", cfg.batch_size),
                   _number("fit.learning_rate", cfg.learning_rate, positive=True),
                   None if most is None else _count("fit.max_train_subjects", most))


@dataclass(frozen=True)
class UNetSettings:
    """The U-Net experiment (``configs/unet.yaml`` documents each key).

    Attributes
    ----------
    seed : int
    atlas : str
        Atlas of the structure's labels.
    labels : tuple of str
        Label names (the atlas's table) whose union is segmented.
    warp : bool
        Carry the labels with each synthetic subject's deformation.
    crop_shape : tuple of int
        The box the U-Net sees, centred on the structure.
    filters : tuple of int
        Channels per level of the U-Net, the last the bottom.
    pool : str
        ``average`` or ``max`` pooling.
    use_bias : bool
        Biases in the U-Net's convolutions.
    fit : FitSettings
    threshold : float
        Logit above which a voxel is the structure.
    explain_subjects : int
        Test subjects explained.
    methods : dict of str to dict
        Explainer configs by tag.
    display : DisplayRule
        How the NIfTI maps' display ranges are chosen.
    """

    seed: int
    atlas: str
    labels: tuple
    warp: bool
    crop_shape: tuple
    filters: tuple
    pool: str
    use_bias: bool
    fit: FitSettings
    threshold: float
    explain_subjects: int
    methods: dict
    display: DisplayRule

    @property
    def pools(self) -> int:
        """Poolings of the U-Net: one between consecutive levels."""
        return len(self.filters) - 1

    @classmethod
    def from_cfg(cls, cfg) -> UNetSettings:
        """Read and check the composed ``unet`` config; a bad value raises a one-line
        :class:`~brainage.errors.SegmentationError` naming the key."""
        from omegaconf import OmegaConf

        settings = cls(
            seed=_count("seed", cfg.seed, 0),
            atlas=str(cfg.structure.atlas),
            labels=tuple(str(v) for v in _list("structure.labels", cfg.structure.labels)),
            warp=_flag("structure.warp", cfg.structure.warp),
            crop_shape=tuple(_count("crop.shape", v) for v in _list("crop.shape", cfg.crop.shape, 3)),
            filters=tuple(_count("network.filters", v) for v in _list("network.filters",
                                                                        cfg.network.filters)),
            pool=_choice("network.pool", cfg.network.pool, POOLS),
            use_bias=_flag("network.use_bias", cfg.network.use_bias),
            fit=FitSettings.from_cfg(cfg.fit),
            threshold=_number("threshold", cfg.threshold),
            explain_subjects=_count("explain.subjects", cfg.explain.subjects),
            methods=OmegaConf.to_container(cfg.explain.methods, resolve=True),
            display=_display_rule(cfg.display),
        )
        settings._check_crop()
        settings._check_methods()
        return settings

    def _check_crop(self) -> None:
        step = 2 ** self.pools
        if len(self.filters) < 2:
            raise SegmentationError(f"unet: network.filters={list(self.filters)} needs at least two "
                                    "levels (an encoder level and the bottom)")
        if any(s % step for s in self.crop_shape):
            raise SegmentationError(f"unet: crop.shape={list(self.crop_shape)} must be multiples of "
                                    f"{step} (2**{self.pools} poolings of network.filters="
                                    f"{list(self.filters)})")

    def _check_methods(self) -> None:
        if not isinstance(self.methods, dict) or not self.methods:
            raise SegmentationError(f"unet: explain.methods must map tags to explainer configs, got "
                                    f"{self.methods!r}")
        for tag, method in self.methods.items():
            name = method.get("name") if isinstance(method, dict) else None
            if name not in REGION_METHODS:
                raise SegmentationError(f"unet: explain.methods.{tag}.name must be one of "
                                        f"{list(REGION_METHODS)} (methods that explain a region of a "
                                        f"per-voxel output), got {name!r}")

"""The U-Net experiment's settings, read once from the ``unet`` config and checked."""
from __future__ import annotations

from dataclasses import dataclass

from brainage.config_values import ConfigReader, MustBe, at_least, flag, non_empty, one_of, positive, real
from brainage.errors import SegmentationError
from brainage.neuro.nifti import DisplayRule
from brainage.segmentation.network import POOLS

# Explainers that explain a region of a per-voxel output (Analyzer.supports_regions), checked here
# so that a bad method fails before training rather than after.
REGION_METHODS = ("dtd", "dtd_w2", "lrp_composite", "epsilon_plus", "gradient", "gradient_x_input",
                  "guided_backprop")


def _count(reader: ConfigReader, key: str, low: int = 1, optional: bool = False) -> int | None:
    return reader.value(key, at_least(low), f"an integer >= {low}", optional)


def _counts(reader: ConfigReader, key: str, length: int | None = None) -> tuple:
    size = f"{length} " if length else "a non-empty list of "
    values = reader.value(key, non_empty(length), f"{size}values")
    return tuple(reader.check(key, v, at_least(1), "an integer >= 1") for v in values)


def _display_rule(display: ConfigReader) -> DisplayRule:
    try:
        return DisplayRule(*(display.value(key, real, "a number")
                             for key in ("low_percentile", "high_percentile", "brain_threshold")))
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
    def from_reader(cls, fit: ConfigReader) -> FitSettings:
        return cls(_count(fit, "epochs"), _count(fit, "batch_size"),
                   fit.value("learning_rate", positive, "a positive number"),
                   _count(fit, "max_train_subjects", optional=True))


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

        unet = ConfigReader(cfg, "", SegmentationError, MustBe("unet"))
        structure, network = unet.block("structure", "a mapping"), unet.block("network", "a mapping")
        settings = cls(
            seed=_count(unet, "seed", 0),
            atlas=str(cfg.structure.atlas),
            labels=tuple(str(v) for v in structure.value("labels", non_empty(),
                                                         "a non-empty list of values")),
            warp=structure.value("warp", flag, "true or false"),
            crop_shape=_counts(unet.block("crop", "a mapping"), "shape", 3),
            filters=_counts(network, "filters"),
            pool=network.value("pool", one_of(*POOLS), f"one of {list(POOLS)}"),
            use_bias=network.value("use_bias", flag, "true or false"),
            fit=FitSettings.from_reader(unet.block("fit", "a mapping")),
            threshold=unet.value("threshold", real, "a number"),
            explain_subjects=_count(unet.block("explain", "a mapping"), "subjects"),
            methods=OmegaConf.to_container(cfg.explain.methods, resolve=True),
            display=_display_rule(unet.block("display", "a mapping")),
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

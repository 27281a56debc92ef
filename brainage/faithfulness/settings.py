"""Settings of the faithfulness checks, read once from ``configs/evaluate.yaml`` (the single source
of their defaults) and checked before any slow work.

Field names are the YAML keys, so ``dataclasses.asdict`` of a block is what ``evaluate.json`` and the
verdict report.
"""
from __future__ import annotations

from dataclasses import dataclass

from brainage.config_values import ConfigReader, at_least, flag, integer, number, one_of, sequence, text
from brainage.errors import EvaluateError
from brainage.faithfulness.perturbation import BASELINES
from brainage.faithfulness.targets import TargetMode, parse_target_mode

FLAG = "true or false"
AT_LEAST_ONE = "≥ 1"
VOXELS = "a number of voxels or null (all)"


@dataclass(frozen=True)
class PerturbationSettings:
    """Region perturbation, most relevant first (``perturbation:``)."""

    enabled: bool
    patch: int
    steps: int
    patches_per_step: int
    baseline: str
    batch_size: int
    blur_sigma: float

    @classmethod
    def from_cfg(cls, block) -> "PerturbationSettings":
        read = _reader(block, "perturbation")
        return cls(read.value("enabled", flag, FLAG),
                   *(read.value(key, at_least(1), AT_LEAST_ONE) for key in ("patch", "steps",
                                                                          "patches_per_step")),
                   read.value("baseline", one_of(*BASELINES), f"one of {list(BASELINES)}"),
                   read.value("batch_size", at_least(1), AT_LEAST_ONE),
                   read.value("blur_sigma", number, "a number of voxels"))


@dataclass(frozen=True)
class RandomisationSettings:
    """Cascading parameter randomisation (``randomisation:``)."""

    enabled: bool
    subjects: int
    granularity: str
    signed: bool
    max_voxels: int | None
    flag_after: str | None  # None: the second cascade step (the one below the logits)
    flag_spearman: float

    @classmethod
    def from_cfg(cls, block) -> "RandomisationSettings":
        read = _reader(block, "randomisation")
        return cls(read.value("enabled", flag, FLAG),
                   read.value("subjects", at_least(1), AT_LEAST_ONE),
                   read.value("granularity", one_of("block", "layer"), "block or layer"),
                   read.value("signed", flag, FLAG),
                   read.value("max_voxels", at_least(1), VOXELS, optional=True),
                   read.value("flag_after", text, "a cascade step or null (the second)",
                              optional=True) or None,
                   read.value("flag_spearman", number, "a Spearman correlation"))


@dataclass(frozen=True)
class LocalisationSettings:
    """Localisation of the synthetic cohort's ground truth (``localisation:``)."""

    enabled: bool
    ground_truth: str | None  # folder with age_effect.nii.gz; None: <data.root>/ground_truth
    mask: str
    threshold: float
    regions: tuple | None
    relevance: str
    brain_threshold: float
    max_voxels: int | None
    min_model_accuracy: float  # mask=planted: below this test balanced accuracy the check is void
    min_model_r2: float  # ... or, for an age regressor, this test R²

    @classmethod
    def from_cfg(cls, block) -> "LocalisationSettings":
        read = _reader(block, "localisation")
        mask = read.value("mask", one_of("effect", "regions", "planted"), "effect, regions or planted")
        regions = read.value("regions", sequence(text), "a list of region names or null",
                             optional=True) or None
        if mask == "regions" and not regions:
            raise EvaluateError("localisation.mask=regions needs localisation.regions=[name, …] "
                                "(names from ground_truth/regions.csv)")
        return cls(read.value("enabled", flag, FLAG),
                   read.value("ground_truth", text, "a folder or null (<data.root>/ground_truth)",
                              optional=True) or None,
                   mask, read.value("threshold", number, "a number"), regions,
                   read.value("relevance", one_of("positive", "absolute"), "positive or absolute"),
                   read.value("brain_threshold", number, "a number"),
                   read.value("max_voxels", at_least(1), VOXELS, optional=True),
                   read.value("min_model_accuracy", number, "a number (0 to 1)"),
                   read.value("min_model_r2", number, "a number (at most 1)"))


@dataclass(frozen=True)
class GradcamLayerSettings:
    """Grad-CAM at several conv layers (``gradcam_layers:``)."""

    enabled: bool
    layers: tuple | None  # None: every block's conv_b

    @classmethod
    def from_cfg(cls, block) -> "GradcamLayerSettings":
        read = _reader(block, "gradcam_layers")
        return cls(read.value("enabled", flag, FLAG),
                   read.value("layers", sequence(text), "a list of conv layer names or null (every "
                              "block's conv_b)", optional=True) or None)


@dataclass(frozen=True)
class ClassMapSettings:
    """The youngest- and the oldest-class maps of the same subjects compared (``class_maps:``)."""

    enabled: bool
    subjects: int

    @classmethod
    def from_cfg(cls, block) -> "ClassMapSettings":
        read = _reader(block, "class_maps")
        return cls(read.value("enabled", flag, FLAG), read.value("subjects", at_least(1), AT_LEAST_ONE))


@dataclass(frozen=True)
class ScorecardSettings:
    """The goals each scorecard row is checked against (``scorecard:`` in ``configs/evaluate.yaml``)."""

    randomisation_step: str  # rand_spearman_<step>: Spearman (|map|) after randomising down to it
    max_rand_spearman: float
    max_class_map_correlation: float
    aopc_within_se: float  # AOPC + this many SE reaches the best AOPC of the scorecard
    min_loc_auc: float
    max_control_ratio: float
    max_conservation_error: float

    @classmethod
    def from_cfg(cls, block) -> "ScorecardSettings":
        read = _reader(block, "scorecard")
        return cls(read.value("randomisation_step", _named, "a cascade step (e.g. dense1)"),
                   *(read.value(key, number, "a number") for key in (
                       "max_rand_spearman", "max_class_map_correlation", "aopc_within_se",
                       "min_loc_auc", "max_control_ratio", "max_conservation_error")))


@dataclass(frozen=True)
class ScoringSettings:
    """How the methods are scored: subjects, target modes, floor, and the checks."""

    targets: tuple[TargetMode, ...]  # every method is scored in each of these modes
    pairs: tuple[str, ...]  # more ``method:target`` pairs
    subjects_limit: int | None
    random_map: bool
    seed: int
    batch_size: int
    progress: bool
    perturbation: PerturbationSettings
    randomisation: RandomisationSettings
    localisation: LocalisationSettings
    gradcam_layers: GradcamLayerSettings
    class_maps: ClassMapSettings
    scorecard: ScorecardSettings

    @classmethod
    def from_cfg(cls, cfg) -> "ScoringSettings":
        """Read the scoring keys of a composed ``evaluate`` config."""
        read = _reader(cfg, "")
        targets = read.raw("target", "a target mode or a list of them")
        return cls(tuple(parse_target_mode(t) for t in (targets if _is_list(targets) else [targets])),
                   read.value("pairs", sequence(text), "a list of method:target pairs",
                              optional=True) or (),
                   read.value("subjects_limit", at_least(1), "a positive number or null (all)",
                              optional=True),
                   read.value("random_map", flag, FLAG), read.value("seed", integer, "a seed"),
                   read.value("batch_size", at_least(1), AT_LEAST_ONE),
                   read.value("progress", flag, FLAG),
                   *(block.from_cfg(read.raw(block_key, f"a {block_key} block"))
                     for block_key, block in _BLOCKS))

    @property
    def target_texts(self) -> list[str]:
        return [t.text for t in self.targets]


def _reader(block, prefix: str) -> ConfigReader:
    return ConfigReader(block, prefix, EvaluateError)


def _named(value) -> str:
    """Non-empty text."""
    if not text(value):
        raise ValueError(value)
    return value


def _is_list(value) -> bool:
    return not isinstance(value, (str, int)) and hasattr(value, "__iter__")


# The blocks of ScoringSettings, in its field order.
_BLOCKS = (("perturbation", PerturbationSettings), ("randomisation", RandomisationSettings),
           ("localisation", LocalisationSettings), ("gradcam_layers", GradcamLayerSettings),
           ("class_maps", ClassMapSettings), ("scorecard", ScorecardSettings))

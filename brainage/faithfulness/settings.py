"""Settings of the faithfulness checks, read once from ``configs/evaluate.yaml`` (the single source
of their defaults) and checked before any slow work.

Field names are the YAML keys, so ``dataclasses.asdict`` of a block is what ``evaluate.json`` and the
verdict report.
"""
from __future__ import annotations

from dataclasses import dataclass

from brainage.errors import EvaluateError
from brainage.faithfulness.perturbation import BASELINES
from brainage.faithfulness.targets import TargetMode, parse_target_mode


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
        if block.baseline not in BASELINES:
            raise EvaluateError(f"perturbation.baseline={block.baseline!r}; expected one of "
                                f"{list(BASELINES)}")
        for key in ("patch", "steps", "patches_per_step", "batch_size"):
            _at_least_one(f"perturbation.{key}", block[key])
        return cls(bool(block.enabled), int(block.patch), int(block.steps),
                   int(block.patches_per_step), str(block.baseline), int(block.batch_size),
                   float(block.blur_sigma))


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
        if block.granularity not in ("block", "layer"):
            raise EvaluateError(f"randomisation.granularity={block.granularity!r}; expected block "
                                "or layer")
        _at_least_one("randomisation.subjects", block.subjects)
        return cls(bool(block.enabled), int(block.subjects), str(block.granularity),
                   bool(block.signed), _optional_int(block.max_voxels),
                   str(block.flag_after) if block.flag_after else None, float(block.flag_spearman))


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

    @classmethod
    def from_cfg(cls, block) -> "LocalisationSettings":
        if block.mask not in ("effect", "regions"):
            raise EvaluateError(f"localisation.mask={block.mask!r}; expected effect or regions")
        if block.mask == "regions" and not block.regions:
            raise EvaluateError("localisation.mask=regions needs localisation.regions=[name, …] "
                                "(names from ground_truth/regions.csv)")
        if block.relevance not in ("positive", "absolute"):
            raise EvaluateError(f"localisation.relevance={block.relevance!r}; expected positive "
                                "or absolute")
        regions = tuple(str(r) for r in block.regions) if block.regions else None
        return cls(bool(block.enabled), str(block.ground_truth) if block.ground_truth else None,
                   str(block.mask), float(block.threshold), regions, str(block.relevance),
                   float(block.brain_threshold), _optional_int(block.max_voxels))


@dataclass(frozen=True)
class GradcamLayerSettings:
    """Grad-CAM at several conv layers (``gradcam_layers:``)."""

    enabled: bool
    layers: tuple | None  # None: every block's conv_b

    @classmethod
    def from_cfg(cls, block) -> "GradcamLayerSettings":
        return cls(bool(block.enabled), tuple(str(n) for n in block.layers) if block.layers else None)


@dataclass(frozen=True)
class ClassMapSettings:
    """The youngest- and the oldest-class maps of the same subjects compared (``class_maps:``)."""

    enabled: bool
    subjects: int

    @classmethod
    def from_cfg(cls, block) -> "ClassMapSettings":
        _at_least_one("class_maps.subjects", block.subjects)
        return cls(bool(block.enabled), int(block.subjects))


@dataclass(frozen=True)
class ScorecardSettings:
    """The goals each scorecard row is checked against (``scorecard:``, issue #19's goals)."""

    randomisation_step: str  # rand_spearman_<step>: Spearman (|map|) after randomising down to it
    max_rand_spearman: float
    max_class_map_correlation: float
    aopc_within_se: float  # AOPC + this many SE reaches the best AOPC of the scorecard
    min_loc_auc: float
    max_control_ratio: float
    max_conservation_error: float

    @classmethod
    def from_cfg(cls, block) -> "ScorecardSettings":
        if not block.randomisation_step:
            raise EvaluateError("scorecard.randomisation_step is empty; name a cascade step "
                                "(e.g. dense1)")
        return cls(str(block.randomisation_step), float(block.max_rand_spearman),
                   float(block.max_class_map_correlation), float(block.aopc_within_se),
                   float(block.min_loc_auc), float(block.max_control_ratio),
                   float(block.max_conservation_error))


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
        targets = cfg.target if _is_list(cfg.target) else [cfg.target]
        if cfg.subjects_limit is not None and int(cfg.subjects_limit) < 1:
            raise EvaluateError(f"subjects_limit={cfg.subjects_limit}; expected a positive number "
                                "or null (all)")
        _at_least_one("batch_size", cfg.batch_size)
        return cls(tuple(parse_target_mode(t) for t in targets),
                   tuple(str(p) for p in cfg.pairs or ()),
                   _optional_int(cfg.subjects_limit), bool(cfg.random_map),
                   int(cfg.seed), int(cfg.batch_size), bool(cfg.progress),
                   PerturbationSettings.from_cfg(cfg.perturbation),
                   RandomisationSettings.from_cfg(cfg.randomisation),
                   LocalisationSettings.from_cfg(cfg.localisation),
                   GradcamLayerSettings.from_cfg(cfg.gradcam_layers),
                   ClassMapSettings.from_cfg(cfg.class_maps),
                   ScorecardSettings.from_cfg(cfg.scorecard))

    @property
    def target_texts(self) -> list[str]:
        return [t.text for t in self.targets]


def _at_least_one(name: str, value) -> None:
    if int(value) < 1:
        raise EvaluateError(f"{name}={value}; expected ≥ 1")


def _is_list(value) -> bool:
    return not isinstance(value, (str, int)) and hasattr(value, "__iter__")


def _optional_int(value) -> int | None:
    return None if value is None else int(value)

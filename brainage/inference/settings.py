"""The infer stage's settings, read once from the Hydra config and validated.

``configs/infer.yaml`` is the single source of defaults; :meth:`InferSettings.from_cfg` reads each
key without repeating a default and raises :class:`~brainage.errors.InferError` naming the
key and what it accepts.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from brainage.config_values import (
    ConfigReader,
    Wording,
    at_least,
    flag,
    given_overrides,
    integer,
    number,
    one_of,
    whole_at_least,
)
from brainage.errors import InferError
from brainage.inference.designs import DESIGNS, DesignSpec

MEASURES = ("share", "raw")
SUBJECT_SETS = ("all", "train", "val", "test")
COVARIATES = ("site", "sex", "total_gm")
MASKS = ("gm", "nonzero")
FWE_SCOPES = ("run", "family")
EXPLAIN_ATLAS = "explain"
"""In ``regions.atlases``: the explain run's own atlas, read from its region table."""


def _container(value):
    from omegaconf import OmegaConf

    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _reader(cfg, prefix: str = "") -> ConfigReader:
    return ConfigReader(cfg, prefix, InferError, Wording(null_is_bad=True))


def _one_of(reader: ConfigReader, key: str, allowed) -> str:
    return reader.value(key, one_of(*allowed), f"one of {', '.join(map(str, allowed))}")


def _positive_int(reader: ConfigReader, key: str) -> int:
    return reader.value(key, at_least(1), "a positive whole number")


def _flag(reader: ConfigReader, key: str) -> bool:
    return reader.value(key, flag, "true or false")


def _level(value) -> float:
    """``alpha``: a number strictly between 0 and 1."""
    alpha = number(value)
    if not 0 < alpha < 1:
        raise ValueError(value)
    return alpha


def _names(reader: ConfigReader, key: str, allow_empty: bool = False) -> tuple | None:
    """``null`` -> None, a name or a list of names -> tuple of str."""
    def names(value) -> tuple:
        listed = [value] if isinstance(value, str) else list(_container(value))
        if (not listed and not allow_empty) or not all(isinstance(n, str) and n for n in listed):
            raise ValueError(value)
        return tuple(listed)

    return reader.value(key, names, "a name or a list of names", optional=True)


def _design(cfg) -> DesignSpec:
    kind = _one_of(_reader(cfg, "design"), "kind", tuple(DESIGNS))
    groups = _container(cfg.groups)
    if groups is not None:
        if (isinstance(groups, (str, int)) or len(groups) != 2
                or not all(isinstance(g, int) and not isinstance(g, bool) for g in groups)
                or groups[0] == groups[1]):
            raise InferError(f"design.groups={groups!r}; expected two different age bins [a, b] "
                             "(tested as b - a), e.g. [0, 2]")
        groups = tuple(int(g) for g in groups)
    if not isinstance(cfg.column, str) or not cfg.column:
        raise InferError(f"design.column={cfg.column!r}; expected a column name of subjects.csv")
    return DesignSpec(kind, groups, str(cfg.column))


@dataclass(frozen=True)
class VoxelSettings:
    enabled: bool
    n_perm: int
    tfce: bool
    mask: str
    gm_threshold: float


@dataclass(frozen=True)
class RegionSettings:
    atlases: tuple
    atlas_threshold: float
    merge_hemispheres: bool
    n_perm: int
    gm_adjust: bool
    top_k: int


@dataclass(frozen=True)
class InferSettings:
    """Everything the infer stage reads from its config (see ``configs/infer.yaml``)."""

    explain_dir: Path | None
    outputs_dir: Path
    methods: tuple | None
    subjects: str
    measure: str
    design: DesignSpec
    covariates: tuple
    alpha: float
    fwe_scope: str
    seed: int
    n_jobs: int
    data: dict
    voxelwise: VoxelSettings
    regions: RegionSettings
    null_shuffles: int

    @classmethod
    def from_cfg(cls, cfg) -> "InferSettings":
        """Read and validate the whole config once."""
        infer = _reader(cfg)
        alpha = infer.value("alpha", _level, "a level between 0 and 1, e.g. 0.05")
        covariates = _names(infer, "covariates", allow_empty=True) or ()
        for name in covariates:
            infer.check("covariates", name, one_of(*COVARIATES), f"one of {', '.join(COVARIATES)}")
        voxels, regions = _reader(cfg.voxelwise, "voxelwise"), _reader(cfg.regions, "regions")
        shuffles = _reader(cfg.null_check, "null_check").value(
            "shuffles", whole_at_least(0), "0 (off) or a positive number")
        atlases = _names(regions, "atlases", allow_empty=True) or ()
        voxels_enabled = _flag(voxels, "enabled")
        if not atlases and not voxels_enabled:
            raise InferError("nothing to test: voxelwise.enabled=false and regions.atlases=[]; "
                             "enable one of them")
        return cls(
            explain_dir=Path(cfg.explain_dir) if cfg.explain_dir else None,
            outputs_dir=Path(cfg.outputs_dir),
            methods=_names(infer, "methods"),
            subjects=_one_of(infer, "subjects", SUBJECT_SETS),
            measure=_one_of(infer, "measure", MEASURES),
            design=_design(cfg.design),
            covariates=covariates,
            alpha=alpha,
            fwe_scope=_one_of(infer, "fwe_scope", FWE_SCOPES),
            seed=infer.value("seed", integer, "a whole number, e.g. 0"),
            n_jobs=infer.value("n_jobs", integer, "a whole number of permutation workers, e.g. 1"),
            data=given_overrides(cfg.data),
            voxelwise=VoxelSettings(
                voxels_enabled, _positive_int(voxels, "n_perm"), _flag(voxels, "tfce"),
                _one_of(voxels, "mask", MASKS),
                voxels.value("gm_threshold", number, "a grey-matter probability, e.g. 0.1")),
            regions=RegionSettings(
                atlases, regions.value("atlas_threshold", number, "a probability in %, e.g. 25"),
                _flag(regions, "merge_hemispheres"), _positive_int(regions, "n_perm"),
                _flag(regions, "gm_adjust"), _positive_int(regions, "top_k")),
            null_shuffles=shuffles,
        )

    def families_per_method(self, n_atlases: int) -> int:
        """FWE families of one method: its voxels (t, TFCE) and each atlas's regions (raw, adjusted)."""
        voxels = (1 + self.voxelwise.tfce) if self.voxelwise.enabled else 0
        return voxels + n_atlases * (1 + self.regions.gm_adjust)

    def needs_grey_matter(self) -> bool:
        """Whether the subjects' GM images must be read (mask, GM adjustment or total GM)."""
        return ((self.voxelwise.enabled and self.voxelwise.mask == "gm") or self.regions.gm_adjust
                or "total_gm" in self.covariates)

"""The explain stage's settings, read once from ``configs/explain.yaml`` (its single source of defaults)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from brainage.config_values import (
    ConfigReader,
    Wording,
    flag,
    integer,
    number,
    sequence,
    text,
    whole_at_least,
)
from brainage.ensemble.members import stands_for_runs
from brainage.errors import ExplainError
from brainage.explaining.targets import target_specs
from brainage.neuro.atlases import BUNDLED_ATLASES
from brainage.neuro.nifti import DisplayRule
from brainage.trained import TrainRunRequest, method_configs


@dataclass(frozen=True)
class AtlasSettings:
    """The atlas of the region tables (``configs/atlas/*.yaml``) and how regions are counted."""

    name: str
    path: str | None  # a NIfTI label map; None: the bundled atlas ``name``
    labels: str | None  # a label table (index, name); None: the atlas' own
    threshold: float  # probabilistic atlases: minimum probability of a label
    merge_hemispheres: bool

    @property
    def source(self) -> str:
        """What :func:`brainage.neuro.atlases.load_atlas` is given: a path or a bundled name."""
        return self.path or self.name


@dataclass(frozen=True)
class ExplainSettings:
    """Everything the explain stage reads from its config.

    Attributes
    ----------
    run : TrainRunRequest
        The training run and subjects to explain.
    train_dirs : tuple of str or None
        An ensemble's training runs (``train_dirs=[A,B,C]``, or a sweep directory standing for its
        runs, or an ensemble training run, also as ``train_dir=<it>``;
        :mod:`brainage.ensemble.members`); None: the one run of ``run``.
    min_icc : float
        An ensemble's ICC(3,1) of regional relevance over the top ``top_k`` regions that counts
        as reliable (``ensemble.min_icc``).
    methods : dict
        ``{name: analyzer parameters}`` (``explainer=…``).
    targets : tuple
        Target specs (:func:`~brainage.explaining.targets.target_specs`); the first is primary.
    batch_size : int
        Volumes per analyzer call; shards are made of whole batches.
    atlas : AtlasSettings
    correct_only : bool
        Group maps from correctly classified subjects only.
    top_k : int
        Regions per bin in the report's charts.
    figure_subjects : int or None
        Overlay figures and viewer entries per method (None: every explained subject).
    display : DisplayRule
        How each map's display range (``cal_min``/``cal_max``) is chosen.
    shard : (i, n) or None
        Explain only the i-th of n parts.
    merge : tuple of str or None
        Shard directories (or their multirun directories) to combine.
    progress : bool
    config : dict
        The resolved config itself: a shard records it and its hash.
    """

    run: TrainRunRequest
    train_dirs: tuple | None
    min_icc: float | None
    methods: dict
    targets: tuple
    batch_size: int
    atlas: AtlasSettings
    correct_only: bool
    top_k: int
    figure_subjects: int | None
    display: DisplayRule
    shard: tuple | None
    merge: tuple | None
    progress: bool
    config: dict = field(repr=False, compare=False)

    @classmethod
    def from_cfg(cls, cfg) -> "ExplainSettings":
        """Read and check ``cfg`` (a composed ``explain`` config) before any slow work."""
        from omegaconf import OmegaConf

        shard, merge = parse_shard(cfg.shard), _merge_dirs(cfg.merge)
        if shard and merge:
            raise ExplainError("shard=… and merge=… exclude each other: run the shards first, then "
                               "merge them in a run of their own")
        explain = ConfigReader(cfg, "", ExplainError, Wording(null_is_bad=True))
        train_dirs = _train_dirs(explain, cfg, shard, merge)
        run = TrainRunRequest.from_cfg(cfg)
        if train_dirs and run.train_dir:  # train_dir=<ensemble run> stands for train_dirs=[it]
            run = replace(run, train_dir=None)
        batch_size = explain.value("batch_size", whole_at_least(1), "≥ 1")
        regions = explain.block("regions", "a mapping")
        return cls(run=run, train_dirs=train_dirs,
                   min_icc=_min_icc(explain),
                   methods=method_configs(cfg.explainer),
                   targets=target_specs(cfg.targets), batch_size=batch_size,
                   atlas=_atlas(explain.block("atlas", "a mapping"),
                                regions.value("merge_hemispheres", flag, "true or false")),
                   correct_only=explain.block("group", "a mapping").value(
                       "correct_only", flag, "true or false"),
                   top_k=regions.value("top_k", integer, "a whole number of regions, e.g. 10"),
                   figure_subjects=explain.block("figures", "a mapping").value(
                       "subjects", _figure_subjects, "all or a number ≥ 0"),
                   display=_display(explain.block("display", "a mapping")), shard=shard,
                   merge=merge, progress=explain.value("progress", flag, "true or false"),
                   config=OmegaConf.to_container(cfg, resolve=True))


def _train_dirs(explain: ConfigReader, cfg, shard, merge) -> tuple | None:
    """``train_dirs``: a list of runs or one sweep directory; None when absent. An ensemble is
    one run's alternative and is explained in one job. ``train_dir`` naming an ensemble training
    run (``make train trainer.ensemble=N``) is ``train_dirs=[that run]``."""
    if not explain.has("train_dirs"):  # a shard's config saved before ensembles existed
        return None
    dirs = explain.value("train_dirs", _run_dirs,
                         "a list of training runs [runA,runB] or a sweep directory", optional=True)
    if not dirs and cfg.train_dir and not cfg.model_path and stands_for_runs(cfg.train_dir):
        dirs = (str(cfg.train_dir),)
        if shard or merge:
            raise ExplainError(f"train_dir={cfg.train_dir} is an ensemble run, explained in one "
                               "job: shard=… and merge=… take one training run")
        return dirs
    if not dirs:
        return None
    if cfg.train_dir or cfg.model_path:
        raise ExplainError("give train_dirs=[…] (an ensemble) or train_dir/model_path (one run), "
                           "not both")
    if shard or merge:
        raise ExplainError("train_dirs=[…] explains an ensemble in one job: shard=… and merge=… "
                           "take one training run")
    return dirs


def _min_icc(explain: ConfigReader) -> float | None:
    """``ensemble.min_icc``; None in a shard's config saved before ensembles existed (a shard
    explains one run, so it has no use for it)."""
    if not explain.has("ensemble"):
        return None
    return explain.block("ensemble", "a mapping").value("min_icc", number,
                                                        "an ICC in [-1, 1], e.g. 0.8")


def _run_dirs(value) -> tuple:
    """``train_dirs``: a list of run directories, or one directory (a sweep of runs)."""
    if isinstance(value, str):
        return (value,)
    return sequence(text)(value)


def _atlas(reader: ConfigReader, merge_hemispheres: bool) -> AtlasSettings:
    from omegaconf import OmegaConf

    atlas = reader.cfg
    if OmegaConf.is_missing(atlas, "path") or (not atlas.path
                                               and str(atlas.name) not in BUNDLED_ATLASES):
        raise ExplainError(f"atlas={atlas.name} needs atlas.path=/path/atlas.nii.gz (and "
                           "atlas.labels=/path/labels.csv with columns index,name); bundled "
                           f"atlases: {', '.join(BUNDLED_ATLASES)}")
    threshold = reader.value("threshold", number, "a probability in %, e.g. 25")
    return AtlasSettings(str(atlas.name), atlas.path or None, atlas.labels or None, threshold,
                         merge_hemispheres)


def _display(display: ConfigReader) -> DisplayRule:
    """``display.*``: each a number; their ranges are :class:`DisplayRule`'s to check."""
    low = display.value("low_percentile", number, "a percentile in [0, 100), e.g. 95")
    high = display.value("high_percentile", number, "a percentile in (0, 100], e.g. 99.9")
    brain = display.value("brain_threshold", number, "a grey-matter probability in [0, 1), e.g. 0.1")
    try:
        return DisplayRule(low, high, brain)
    except ValueError as exc:
        raise ExplainError(str(exc)) from exc


def _merge_dirs(value) -> tuple | None:
    """``merge=``: one directory or a list; None (or empty text) when not merging."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    dirs = (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)
    if not dirs:
        raise ExplainError("merge=[]: name the shard directories or their multirun directory")
    return dirs


def _figure_subjects(value) -> int | None:
    """``figures.subjects``: ``all`` (None) or how many subjects per method."""
    if str(value) == "all":
        return None
    count = int(value)
    if count < 0:
        raise ValueError(value)
    return count


def parse_shard(value) -> tuple[int, int] | None:
    """``shard=i/n`` -> ``(i, n)`` with ``0 <= i < n``; None or empty -> None (no sharding)."""
    if value is None or str(value).strip() in ("", "null", "None"):
        return None
    text = str(value).strip()
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise ExplainError(f"shard={text!r}: expected i/n with 0 <= i < n, e.g. shard=0/4 ... "
                           "shard=3/4 (shards count from 0)")
    return i, n

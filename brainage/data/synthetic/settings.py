"""Settings of the synthetic generator: its parameters, and the cohort a data config asks for."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from brainage.config_values import ConfigReader, as_is, flag, integer, text
from brainage.data.synthetic.participants import AGE_BIN_EDGES, AGE_DISTRIBUTIONS
from brainage.data.workers import WORKERS_EXPECTED, worker_count
from brainage.errors import DataError

_NON_NEGATIVE = ("noise_sd", "smoothing_fwhm_mm", "effect_scale", "thinning", "head_size_sd",
                 "rotation_deg", "translation_mm", "warp_mm", "site_scale_sd", "site_offset_sd",
                 "site_fwhm_mm")


@dataclass(frozen=True)
class SyntheticSettings:
    """Parameters of the synthetic cohort (the ``synthetic:`` block of ``configs/data/synthetic.yaml``).

    The defaults equal the YAML's (a test holds them together); they serve callers of
    :func:`~brainage.data.synthetic.writer.generate_cohort` without a config. All of them are
    recorded in ``cohort.json``.

    Parameters
    ----------
    seed : int
        Seeds everything; the same seed gives byte-identical files.
    age_distribution : {"pac2019", "uniform", "balanced"}
        ``pac2019``: 65.7 % aged [age_min, 40), 30 % [40, 70), 4.3 % [70, age_max] (PAC 2019's
        skew to the young); ``balanced``: equal thirds over these bins; ``uniform`` over
        [age_min, age_max]. Within a bin ages are uniform, to 0.1 year.
    age_min, age_max : float
        Age range (years).
    n_sites : int
        Number of acquisition sites; subjects are assigned at random.
    noise_sd : float
        SD of the spatially correlated noise in the final GM probabilities (inside the brain).
    smoothing_fwhm_mm : float
        Base Gaussian smoothing (FWHM, mm) of every image; sites add their own extra smoothing.
    effect_scale : float
        Multiplies every age effect (regional loss, thinning, ventricles); 1 = literature rates.
    thinning : float
        Strength of cortical-ribbon thinning, ``p ** (1 + thinning * loss)``; 0 switches it off.
    ventricle_expansion_mm : float
        Outward displacement (mm) of the ventricle walls at age 85 relative to 20 (times
        ``effect_scale``).
    head_size_sd : float
        SD of the isotropic head-size scaling (fraction); men are ``sex_head_size`` larger. The
        images stand for spatially normalised GM maps, so size and misregistration are residuals.
    sex_head_size : float
        Head-size difference men minus women (fraction).
    rotation_deg, translation_mm : float
        SD of the random rigid misregistration per axis.
    warp_mm : float
        SD (mm) of each coefficient of the smooth non-linear warp (3 x 3 x 3 DCT basis per axis).
    site_scale_sd, site_offset_sd : float
        SD of each site's intensity scale (around 1) and offset (inside the brain).
    site_fwhm_mm : float
        Each site adds uniform random extra smoothing in [0, site_fwhm_mm] mm FWHM.
    """

    seed: int = 0
    age_distribution: str = "pac2019"
    age_min: float = 17.0
    age_max: float = 90.0
    n_sites: int = 3
    noise_sd: float = 0.03
    smoothing_fwhm_mm: float = 3.0
    effect_scale: float = 1.0
    thinning: float = 0.7
    ventricle_expansion_mm: float = 4.0
    head_size_sd: float = 0.01
    sex_head_size: float = 0.01
    rotation_deg: float = 0.5
    translation_mm: float = 0.5
    warp_mm: float = 0.75
    site_scale_sd: float = 0.03
    site_offset_sd: float = 0.01
    site_fwhm_mm: float = 2.0

    def __post_init__(self):
        if self.age_distribution not in AGE_DISTRIBUTIONS:
            raise DataError(
                f"age_distribution {self.age_distribution!r}: expected one of {AGE_DISTRIBUTIONS}"
            )
        if not self.age_min < AGE_BIN_EDGES[0] and self.age_distribution != "uniform":
            raise DataError(f"age_min {self.age_min} must be below {AGE_BIN_EDGES[0]}")
        if not self.age_max > AGE_BIN_EDGES[1] and self.age_distribution != "uniform":
            raise DataError(f"age_max {self.age_max} must be above {AGE_BIN_EDGES[1]}")
        if self.age_min >= self.age_max:
            raise DataError(f"age_min {self.age_min} must be below age_max {self.age_max}")
        if self.n_sites < 1:
            raise DataError(f"n_sites must be at least 1, got {self.n_sites}")
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise DataError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: dict) -> "SyntheticSettings":
        """Settings from a config block; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(
                f"unknown synthetic setting(s) {unknown}; known: {sorted(known)}"
            )
        types = {f.name: f.type for f in fields(cls)}
        cast = {"int": int, "float": float, "str": str}
        values = {}
        for key, value in d.items():
            try:
                values[key] = cast[types[key]](value)
            except (TypeError, ValueError) as exc:
                raise DataError(f"synthetic setting {key}={value!r}: expected a {types[key]}") from exc
        return cls(**values)


@dataclass(frozen=True)
class SyntheticCohortSettings:
    """The synthetic cohort a data config (``configs/data/synthetic.yaml``) asks for.

    Attributes
    ----------
    root : Path
        Folder of the cohort (``data.root``).
    n_subjects : int
        How many subjects to generate (``data.n_subjects``).
    generate : bool
        Generate the cohort when ``root`` holds none (``data.generate``).
    workers : int or None
        Worker processes (``data.synthetic.workers``); None = every available core. Not part of
        the cohort's identity: any count writes the same files.
    parameters : SyntheticSettings
        The rest of the ``data.synthetic`` block.
    """

    root: Path
    n_subjects: int
    generate: bool
    workers: int | None
    parameters: SyntheticSettings

    @classmethod
    def from_cfg(cls, data_cfg) -> "SyntheticCohortSettings":
        """Read ``root``, ``n_subjects``, ``generate`` and the ``synthetic:`` block.

        Raises
        ------
        DataError
            A key is missing or holds a value of the wrong kind; the message names it.
        """
        data = ConfigReader(data_cfg, "data")
        n_subjects = data.value("n_subjects", integer, "the number of subjects to generate",
                                optional=True)
        if n_subjects is None:
            raise DataError("a synthetic cohort needs data.n_subjects (how many subjects to generate)")
        block = dict(data.value("synthetic", as_is, "a block of generator settings"))
        # Configs saved by runs from before the setting existed lack it: every core, as its YAML default.
        workers = (ConfigReader(block, "data.synthetic").value("workers", worker_count, WORKERS_EXPECTED,
                                                                optional=True)
                   if "workers" in block else None)
        block.pop("workers", None)
        return cls(
            root=Path(data.value("root", text, "the cohort folder")),
            n_subjects=n_subjects,
            generate=data.value("generate", flag, "true or false"),
            workers=workers,
            parameters=SyntheticSettings.from_dict(block),
        )

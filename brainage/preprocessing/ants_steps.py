"""The ANTsPy implementation of :func:`brainage.preprocessing.steps.preprocess_t1`.

Every step is a call into ANTs (N4, antsRegistration, antsApplyTransforms, Atropos, the Jacobian
of the warp); this module only chains them, checks the input and times each step. The template is
nilearn's bundled MNI152 2009 (symmetric) T1 with its brain mask and grey- and white-matter maps,
at 2 mm: registering the skull-on T1 to the skull-stripped template is made robust by starting from
a population-typical scale about the centre of the subject's white matter and by measuring the
affine's metric inside the template's dilated brain only.
"""
from __future__ import annotations

import os
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np

from brainage.neuro.grid import MNI_1P5MM_AFFINE, MNI_1P5MM_SHAPE
from brainage.preprocessing.step_types import PreprocessError, StepSettings, SubjectResult

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
import ants  # noqa: E402  (after the thread count, which ITK reads when it loads)

TISSUES = ("csf", "gm", "wm")


class _Timer:
    def __init__(self):
        self.seconds, self._last = {}, time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = round(now - self._last, 3)
        self._last = now


def run(path, subject_id: str, settings: StepSettings) -> SubjectResult:
    """Preprocess one T1 image (see :mod:`brainage.preprocessing.steps`)."""
    ants.config.set_ants_deterministic(True, settings.seed)
    tick = _Timer()
    t1 = read_t1(Path(path), subject_id)
    tick("read")
    n4 = ants.n4_bias_field_correction(t1, shrink_factor=settings.n4_shrink,
                                       convergence={"iters": list(settings.n4_iterations), "tol": 1e-7})
    tick("bias_correction")
    tpl = template(settings.template_resolution_mm)
    with tempfile.TemporaryDirectory(prefix="brainage-ants-") as work:
        affine = register_affine(n4, tpl, settings, Path(work))
        tick("affine")
        reg = register_syn(n4, affine, tpl, settings, Path(work))
        tick("syn")
        mask, priors = to_native(n4, tpl, reg["invtransforms"], settings.mask_threshold)
        check_brain(mask, subject_id, settings)
        tick("brain_mask")
        n4 = ants.n4_bias_field_correction(t1, mask=mask, shrink_factor=settings.n4_shrink,
                                           convergence={"iters": list(settings.n4_brain_iterations),
                                                        "tol": 1e-7})
        tick("brain_bias_correction")
        posteriors = segment(n4, mask, priors, settings)
        tick("segmentation")
        result = to_mni(n4, mask, posteriors, reg["fwdtransforms"], tpl, settings)
        tick("warp_to_mni")
    result.seconds = tick.seconds
    return result


def read_t1(path: Path, subject_id: str):
    """The T1 image as float32, refused with the reason when it is not a readable 3D volume."""
    try:
        img = nib.load(str(path))
        shape = img.shape
    except Exception as exc:  # nibabel raises several types for a corrupt file
        raise PreprocessError(f"{subject_id}: {path} cannot be read as NIfTI ({exc})") from exc
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise PreprocessError(f"{subject_id}: {path} has shape {img.shape}; expected one 3D T1 volume")
    if min(shape) < 16:
        raise PreprocessError(f"{subject_id}: {path} has shape {img.shape}; too small for a brain")
    try:
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except Exception as exc:
        raise PreprocessError(f"{subject_id}: {path} cannot be read ({exc})") from exc
    if not np.isfinite(data).all() or float(data.max()) <= float(data.min()):
        raise PreprocessError(f"{subject_id}: {path} is constant or holds NaN/inf values")
    return _to_ants(data, img.affine)


@lru_cache(maxsize=2)
def template(resolution_mm: int) -> dict:
    """nilearn's MNI152 2009 T1, brain mask and GM/WM maps as ANTs images, plus the 1.5 mm grid."""
    from nilearn import datasets  # deferred: nilearn's datasets import is slow

    def to_ants(img):
        return _to_ants(np.asarray(img.dataobj, np.float32), img.affine)

    tpl = {"t1": to_ants(datasets.load_mni152_template(resolution=resolution_mm)),
           "mask": to_ants(datasets.load_mni152_brain_mask(resolution=resolution_mm)),
           "gm": to_ants(datasets.load_mni152_gm_template(resolution=resolution_mm)),
           "wm": to_ants(datasets.load_mni152_wm_template(resolution=resolution_mm))}
    tpl["grid"] = _to_ants(np.zeros(MNI_1P5MM_SHAPE, np.float32), MNI_1P5MM_AFFINE)
    # the template on the 1.5 mm grid, once, for every subject's similarity
    tpl["t1_on_grid"] = ants.resample_image_to_target(tpl["t1"], tpl["grid"]).numpy()
    tpl["brain_on_grid"] = ants.resample_image_to_target(tpl["mask"], tpl["grid"],
                                                         interp_type="nearestNeighbor").numpy() > 0.5
    return tpl


def register_affine(n4, tpl: dict, settings: StepSettings, work: Path) -> str:
    """The affine transform file: from a typical scale about the white matter's centre."""
    start = work / "start.mat"
    moving_centre = np.array(ants.get_center_of_mass(white_matter_blob(n4)))
    fixed_centre = np.array(ants.get_center_of_mass(ants.threshold_image(tpl["wm"], 0.5, 2)))
    init = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, matrix=np.eye(3) * settings.initial_scale,
        center=tuple(fixed_centre), translation=tuple(moving_centre - fixed_centre))
    ants.write_transform(init, str(start))
    reg = ants.registration(tpl["t1"], n4, type_of_transform="Affine", initial_transform=str(start),
                            mask=ants.iMath(tpl["mask"], "MD", settings.affine_mask_dilation),
                            aff_metric="mattes", aff_sampling=32, aff_random_sampling_rate=1.0,
                            aff_iterations=tuple(settings.affine_iterations),
                            aff_shrink_factors=tuple(settings.affine_shrink),
                            aff_smoothing_sigmas=tuple(settings.affine_sigmas),
                            outprefix=str(work / "affine_"))
    return reg["fwdtransforms"][0]


def white_matter_blob(n4):
    """The largest bright connected region (white matter, mostly): its centre starts the affine."""
    from skimage.filters import threshold_multiotsu, threshold_otsu  # deferred: only here

    data = n4.numpy()
    head = data > threshold_otsu(data)
    bright = (data > threshold_multiotsu(data[head], classes=3)[1]).astype(np.float32)
    return ants.iMath(ants.iMath(ants.from_numpy_like(bright, n4), "ME", 2), "GetLargestComponent")


def register_syn(n4, affine: str, tpl: dict, settings: StepSettings, work: Path) -> dict:
    """SyN from the affine, on the T1 inside the affine's brain mask (skull left out)."""
    rough = ants.apply_transforms(n4, tpl["mask"], [affine], whichtoinvert=[True])
    brain = n4 * ants.iMath(ants.threshold_image(rough, 0.5, 2), "MD", 2)
    return ants.registration(tpl["t1"], brain, type_of_transform="SyNOnly", initial_transform=affine,
                             syn_metric=settings.syn_metric, syn_sampling=settings.syn_sampling,
                             reg_iterations=tuple(settings.syn_iterations),
                             mask=ants.iMath(tpl["mask"], "MD", settings.affine_mask_dilation),
                             outprefix=str(work / "syn_"))


def to_native(n4, tpl: dict, inverse: list, threshold: float):
    """The template's brain mask (its interpolated value above ``threshold``) and tissue priors
    carried back onto the subject's T1."""
    def back(image):
        return ants.apply_transforms(n4, image, inverse, whichtoinvert=[True, False], interpolator="linear")

    mask = ants.threshold_image(back(tpl["mask"]), threshold, 2)
    gm, wm = back(tpl["gm"]).numpy(), back(tpl["wm"]).numpy()
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    priors = [ants.from_numpy_like(p.astype(np.float32), n4) for p in (csf, gm, wm)]
    return mask, priors


def check_brain(mask, subject_id: str, settings: StepSettings) -> None:
    """A brain mask far from an adult brain's volume means the registration failed."""
    volume = float(mask.numpy().sum()) * float(np.prod(mask.spacing)) / 1000.0
    if not settings.min_brain_ml <= volume <= settings.max_brain_ml:
        raise PreprocessError(f"{subject_id}: the brain mask holds {volume:.0f} mL; expected "
                              f"{settings.min_brain_ml:.0f}-{settings.max_brain_ml:.0f} mL (brain "
                              "extraction failed: check the image's orientation and field of view)")


def segment(n4, mask, priors: list, settings: StepSettings) -> list:
    """Atropos: CSF, GM and WM posteriors inside the brain mask, from the template's priors."""
    seg = ants.atropos(a=n4, x=mask, i=priors, m=f"[{settings.mrf_weight},1x1x1]",
                       c=f"[{settings.atropos_iterations},0]", priorweight=settings.prior_weight)
    return seg["probabilityimages"]


def to_mni(n4, mask, posteriors: list, forward: list, tpl: dict, settings: StepSettings) -> SubjectResult:
    """GM on the 1.5 mm grid, unmodulated and modulated; native volumes; registration similarity."""
    grid = tpl["grid"]
    gm_mni = ants.apply_transforms(grid, posteriors[1], forward, interpolator="linear")
    jac = jacobian(forward, tpl["t1"], grid, settings.modulation)
    voxel_ml = float(np.prod(n4.spacing)) / 1000.0
    volumes = {f"{name}_ml": float(p.numpy()[mask.numpy() > 0].sum()) * voxel_ml
               for name, p in zip(TISSUES, posteriors)}
    volumes["tiv_ml"] = float(mask.numpy().sum()) * voxel_ml
    t1_mni = ants.apply_transforms(grid, n4, forward, interpolator="linear")
    unmod = np.clip(gm_mni.numpy(), 0.0, 1.0)
    assert np.allclose(ants.to_nibabel_nifti(gm_mni).affine, MNI_1P5MM_AFFINE, atol=1e-3)
    return SubjectResult(
        gm_modulated=_nifti(unmod * jac), gm_unmodulated=_nifti(unmod),
        brain_mask=ants.to_nibabel_nifti(mask.astype("uint8")),
        gm_native=ants.to_nibabel_nifti(posteriors[1]), t1_mni=_nifti(t1_mni.numpy()),
        volumes_ml=volumes, similarity=similarity(t1_mni, tpl))


def jacobian(forward: list, domain, grid, modulation: str) -> np.ndarray:
    """Volume of subject per volume of template at each grid voxel: the warp's Jacobian
    determinant, times the affine's for ``modulation='full'`` (head size kept)."""
    warp = ants.create_jacobian_determinant_image(domain, forward[0], do_log=False)
    warp = ants.resample_image_to_target(warp, grid, interp_type="linear").numpy()
    if modulation == "full":
        matrix = np.asarray(ants.read_transform(forward[1]).parameters[:9]).reshape(3, 3)
        warp = warp * abs(float(np.linalg.det(matrix)))
    return np.clip(warp, 0.0, None)


def similarity(t1_mni, tpl: dict) -> float:
    """Pearson correlation of the warped T1 with the template inside the template's brain."""
    inside = tpl["brain_on_grid"]
    return float(np.corrcoef(tpl["t1_on_grid"][inside], t1_mni.numpy()[inside])[0, 1])


def _to_ants(data: np.ndarray, affine):
    """A nibabel volume as an ANTs image (units set: ANTs warns about NIfTI's 'unknown')."""
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    return ants.from_nibabel_nifti(img)


def _nifti(data: np.ndarray):
    return nib.Nifti1Image(np.asarray(data, np.float32), MNI_1P5MM_AFFINE)

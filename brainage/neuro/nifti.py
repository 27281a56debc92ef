"""Relevance maps as NIfTI files a viewer lays exactly over the subject's image.

The header says how to look at a map: ``cal_min``/``cal_max`` is a display range under which
FSLeyes, NiiVue and MRIcroGL show the strongest relevance over the anatomy rather than the whole
box, and ``intent_name``/``descrip`` say method, target and whether the method passed its checks.

Display range convention (docs/explaining.md, "Opening the maps in a viewer", has the sources):
``cal_min`` is a threshold on |R| — a percentile of |R| over the brain's non-zero voxels — and
``cal_max`` the top of the scale, for signed maps too. NiiVue hides overlay voxels below
``cal_min`` and, given a negative colormap, mirrors the range onto ``[-cal_max, -cal_min]``;
MRIcroGL takes the range as the overlay window and hides what lies below it; FSLeyes with
``-un -dr cal_min cal_max`` does the same. The symmetric ``[-cal_max, cal_max]`` would be read
by all three as "show everything above ``-cal_max``": the zeros and the background included.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brainage.neuro.grid import Grid

MNI_CODE = 4  # NIFTI_XFORM_MNI_152
NOT_SCORED = "not scored"  # ``checks=`` until an evaluate scorecard says more
DESCRIP_BYTES = 79  # descrip is char[80], NUL-terminated
INTENT_NAME_BYTES = 15  # intent_name is char[16]; niftilib keeps 15 characters


@dataclass(frozen=True)
class DisplayRule:
    """How a map's display range is chosen (``display.*`` in ``configs/explain.yaml``).

    Parameters
    ----------
    low_percentile : float
        ``cal_min`` is this percentile of |R| over the brain's non-zero voxels: the viewer shows
        the strongest ``100 - low_percentile`` % of them.
    high_percentile : float
        ``cal_max`` is this percentile (voxels above it get the top colour).
    brain_threshold : float
        Grey-matter probability above which a voxel counts as brain.
    """

    low_percentile: float
    high_percentile: float
    brain_threshold: float

    def __post_init__(self):
        if not 0.0 <= self.low_percentile < self.high_percentile <= 100.0:
            raise ValueError(f"display.low_percentile={self.low_percentile} and high_percentile="
                             f"{self.high_percentile}: expected 0 <= low < high <= 100")
        if not 0.0 <= self.brain_threshold < 1.0:
            raise ValueError(f"display.brain_threshold={self.brain_threshold}: expected a grey-"
                             "matter probability in [0, 1)")

    def brain_mask(self, grey_matter: np.ndarray) -> np.ndarray:
        """Voxels whose grey-matter probability exceeds :attr:`brain_threshold`."""
        return np.asarray(grey_matter) > self.brain_threshold


@dataclass(frozen=True)
class DisplayRange:
    """A map's ``cal_min``/``cal_max`` and whether it has negative values.

    ``cal_min = cal_max = 0`` means "no range": viewers then choose their own.
    """

    cal_min: float
    cal_max: float
    signed: bool

    def shown(self, data: np.ndarray) -> np.ndarray:
        """The voxels a viewer shows under this range: |value| ≥ ``cal_min`` (none without one)."""
        data = np.asarray(data)
        if not self.cal_max > self.cal_min > 0:
            return np.zeros(data.shape, dtype=bool)
        return np.abs(data) >= self.cal_min

    @classmethod
    def of(cls, img: nib.Nifti1Image) -> "DisplayRange":
        """The range a saved map carries in its header."""
        data = np.asarray(img.dataobj)
        return cls(float(img.header["cal_min"]), float(img.header["cal_max"]),
                   bool((data < 0).any()))


def display_range(data: np.ndarray, brain: np.ndarray, rule: DisplayRule) -> DisplayRange:
    """The display range of a map: percentiles of |R| over the non-zero voxels of ``brain``.

    ``brain`` is a boolean mask of ``data``'s shape (the subject's GM above the rule's threshold
    for a subject map, the cohort's mean GM for a group map). ``cal_min > 0``, so zeros are never
    shown; ``cal_max`` is strictly above ``cal_min`` (as float32), which viewers require before
    they trust a header range. Without a non-zero brain voxel there is no range (0, 0).
    """
    data = np.asarray(data)
    if brain.shape != data.shape:
        raise ValueError(f"brain mask {brain.shape} and map {data.shape} differ in shape")
    signed = bool((data < 0).any())
    values = np.abs(data[brain & np.isfinite(data) & (data != 0)]).astype(np.float64)
    if values.size == 0:
        return DisplayRange(0.0, 0.0, signed)
    low, high = np.percentile(values, [rule.low_percentile, rule.high_percentile])
    low = np.float32(low)
    high = max(np.float32(high), np.nextafter(low, np.float32(np.inf)))
    return DisplayRange(float(low), float(high), signed)


@dataclass(frozen=True)
class MapLabel:
    """What a map shows, for its ``intent_name`` and ``descrip``.

    ``descrip`` reads ``<method> target=<target> [<what>] checks=<checks> [run=<source>]``;
    trailing fields that do not fit the header's 79 characters are left out whole.
    """

    method: str
    target: str
    checks: str = NOT_SCORED
    what: str = ""
    source: str = ""

    def descrip(self) -> str:
        fields = [self.method, f"target={self.target}", self.what, f"checks={self.checks}",
                  f"run={self.source}" if self.source else ""]
        text = ""
        for field in filter(None, fields):
            candidate = f"{text} {field}" if text else field
            if len(candidate.encode()) > DESCRIP_BYTES:
                break
            text = candidate
        return text

    def intent_name(self) -> str:
        return self.method.encode()[:INTENT_NAME_BYTES].decode(errors="ignore")


def reference_header(path=None, grid: Grid | None = None) -> nib.Nifti1Header:
    """Header to copy the spatial fields from: the subject's input image, else the cohort grid."""
    if path:
        try:
            return nib.load(str(path)).header.copy()
        except (FileNotFoundError, OSError):
            pass
    hdr = nib.Nifti1Header()
    if grid is not None:
        hdr.set_sform(grid.affine, code=MNI_CODE)
        hdr.set_qform(grid.affine, code=MNI_CODE)
    return hdr


def relevance_image(volume: np.ndarray, grid: Grid, header: nib.Nifti1Header | None = None,
                    label: MapLabel | str = "",
                    display: DisplayRange | None = None) -> nib.Nifti1Image:
    """A cropped relevance volume put back on the source grid with the source image's affine.

    The crop is undone (zeros outside), sform and qform with their codes come from ``header``
    (the subject's input image) so the map lies voxel for voxel over it. ``display`` gives
    ``cal_min``/``cal_max`` (none: 0, 0); ``label`` the ``intent_name`` and ``descrip`` (a plain
    string is taken as the ``descrip``). The intent is an estimate.
    """
    full = grid.uncrop(np.asarray(volume, dtype=np.float32))
    header = header if header is not None else reference_header(grid=grid)
    sform, scode = header.get_sform(coded=True)
    qform, qcode = header.get_qform(coded=True)
    affine = sform if sform is not None else (qform if qform is not None else grid.affine)
    if not np.allclose(affine, grid.affine, atol=1e-3):
        raise ValueError(f"reference affine {np.round(affine[:3], 3).tolist()} is not the cohort "
                         f"grid's {np.round(grid.affine[:3], 3).tolist()}")
    img = nib.Nifti1Image(full, affine)
    out = img.header
    out.set_sform(sform if sform is not None else grid.affine, code=int(scode) or MNI_CODE)
    out.set_qform(qform if qform is not None else grid.affine, code=int(qcode) or MNI_CODE)
    out.set_xyzt_units(*header.get_xyzt_units())
    out.set_data_dtype(np.float32)
    if isinstance(label, MapLabel):
        out.set_intent("estimate", name=label.intent_name())
        descrip = label.descrip()
    else:
        out.set_intent("estimate")
        descrip = label
    display = display or DisplayRange(0.0, 0.0, False)
    out["cal_min"], out["cal_max"] = display.cal_min, display.cal_max
    out["descrip"] = descrip.encode()[:DESCRIP_BYTES]
    return img


def save_atomic(img: nib.Nifti1Image, path) -> Path:
    """Write to a temporary name in the same folder, then rename: no half-written file remains.

    The temporary file is created with mode 0666 less the umask, as a plain ``open`` creates
    files (``tempfile.mkstemp`` would give 0600: maps nobody else on a shared server can read).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes[-2:]) or ".nii"  # nibabel compresses by the extension
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        nib.save(img, str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def grid_image(grid: Grid, volume: np.ndarray | None = None) -> nib.Nifti1Image:
    """A cropped volume put back on the cohort grid as an image; zeros (uint8) when ``volume`` is None.

    The image an atlas is resampled onto, and a subject's background when its source file is gone.
    """
    if volume is None:
        return nib.Nifti1Image(np.zeros(grid.source_shape, dtype=np.uint8), grid.affine)
    return nib.Nifti1Image(grid.uncrop(np.asarray(volume, dtype=np.float32)), grid.affine)

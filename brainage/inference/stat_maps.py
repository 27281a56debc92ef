"""Statistic maps as NIfTI files on the cohort grid, with a display range a viewer can open as is.

``cal_min``/``cal_max`` make FSLeyes, MRIcroGL or NiiVue show what matters rather than the whole
box, by the convention of the relevance maps (:mod:`brainage.neuro.nifti`): ``cal_min`` is a
threshold on |value| and ``cal_max`` the top, for signed maps too (NiiVue mirrors the range onto
the negative side). For a t map ``cal_min`` is the FWE threshold |t| (the strongest 5 % of |t| when
no voxel is significant; the ``descrip`` says which) and ``cal_max`` the largest |t|; for a TFCE
map the smallest FWE-significant TFCE value (else again the strongest 5 %); for a −log10 p(FWE)
map ``cal_min`` is −log10(alpha), so exactly the significant voxels show — none when none is —
and ``cal_max`` stays above it, as viewers need before they trust a header's range.
"""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from brainage.neuro.nifti import save_atomic

STRONGEST_PERCENTILE = 95.0  # shown when nothing is significant: the strongest 5 %, as for relevance


def stat_image(values: np.ndarray, mask: np.ndarray, reference, display: tuple, descrip: str,
               intent: tuple) -> nib.Nifti1Image:
    """``values`` over ``mask`` put on ``reference``'s grid (zeros elsewhere), header from it.

    ``intent`` is ``(code, params, name)`` for :meth:`nibabel.Nifti1Header.set_intent`.
    """
    data = np.zeros(mask.shape, dtype=np.float32)
    data[mask] = values
    header = reference.header.copy()
    img = nib.Nifti1Image(data, reference.affine, header)
    sform, scode = header.get_sform(coded=True)
    qform, qcode = header.get_qform(coded=True)
    if sform is not None:
        img.set_sform(sform, code=int(scode))
    if qform is not None:
        img.set_qform(qform, code=int(qcode))
    img.header.set_data_dtype(np.float32)
    img.header.set_slope_inter(None, None)
    code, params, name = intent
    img.header.set_intent(code, params, name=name)
    img.header["cal_min"], img.header["cal_max"] = display
    img.header["descrip"] = descrip.encode()[:79]
    return img


def t_display(t: np.ndarray, threshold: float) -> tuple:
    """``((cal_min, cal_max), note)`` of a t map: the FWE threshold, or the strongest voxels."""
    top = float(np.max(np.abs(t), initial=0.0))
    if np.isfinite(threshold) and top > threshold:
        return (threshold, top), "|t|>=cal_min FWE-significant"
    strongest = float(np.percentile(np.abs(t), STRONGEST_PERCENTILE)) if t.size else 0.0
    return (strongest, above(strongest, top)), "none FWE-significant; cal_min=top 5% |t|"


def tfce_display(tfce: np.ndarray, logp: np.ndarray, cut: float) -> tuple:
    """``((cal_min, cal_max), note)`` of a TFCE map: its smallest FWE-significant value, or the
    strongest 5 %."""
    top = float(np.max(np.abs(tfce), initial=0.0))
    significant = np.abs(tfce[logp >= cut - 1e-12])
    if significant.size:
        low = float(significant.min())
        return (low, above(low, top)), ">=cal_min FWE-significant"
    low = float(np.percentile(np.abs(tfce), STRONGEST_PERCENTILE)) if tfce.size else 0.0
    return (low, above(low, top)), "none FWE-significant; cal_min=top 5%"


def above(low: float, top: float) -> float:
    """``top``, or the next float32 above ``low`` when ``top`` is not above it: a viewer ignores a
    header range whose ``cal_max`` does not exceed its ``cal_min``."""
    low32 = np.float32(low)
    return float(max(np.float32(top), np.nextafter(low32, np.float32(np.inf))))


def write_voxel_maps(result, mask: np.ndarray, reference, folder, stem: str, alpha: float) -> dict:
    """``<stem>_t.nii.gz`` and ``<stem>_logp_fwe.nii.gz`` (+ TFCE maps) in ``folder``.

    Returns ``{kind: path}`` with kinds ``t``, ``logp_fwe`` and, with TFCE, ``tfce``,
    ``logp_fwe_tfce``.
    """
    folder = Path(folder)
    cut = -np.log10(alpha)
    (lo, hi), note = t_display(result.t, result.t_threshold)
    maps = {"t": stat_image(result.t, mask, reference, (lo, hi), f"{stem} t df={result.df}; {note}",
                            ("t test", (result.df,), "t"))}

    def logp_image(values, what):
        return stat_image(values, mask, reference, (cut, above(cut, float(np.max(values, initial=0)))),
                          f"{stem} -log10 p FWE ({what}); >=cal_min p<{alpha:g}",
                          ("none", (), "-log10pFWE"))

    maps["logp_fwe"] = logp_image(result.logp_fwe, "max |t|")
    if result.tfce is not None:
        display, note = tfce_display(result.tfce, result.logp_fwe_tfce, cut)
        maps["tfce"] = stat_image(result.tfce, mask, reference, display, f"{stem} TFCE; {note}",
                                  ("none", (), "TFCE"))
        maps["logp_fwe_tfce"] = logp_image(result.logp_fwe_tfce, "TFCE")
    return {kind: save_atomic(img, folder / f"{stem}_{kind}.nii.gz") for kind, img in maps.items()}

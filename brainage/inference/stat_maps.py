"""Statistic maps as NIfTI files on the cohort grid, with a display range a viewer can open as is.

``cal_min``/``cal_max`` make FSLeyes, MRIcroGL or NiiVue show what matters rather than the whole
box: for a t map ``cal_min`` is the FWE threshold |t| (the strongest 0.5 % of |t| when no voxel is
significant; the ``descrip`` says which) and ``cal_max`` the largest |t| (a t map is signed: show
the negative side with the same range); for a −log10 p(FWE) map ``cal_min`` is −log10(alpha).
"""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

STRONGEST_PERCENTILE = 99.5


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
    return (strongest, max(top, strongest)), "none FWE-significant; cal_min=top 0.5% |t|"


def write_voxel_maps(result, mask: np.ndarray, reference, folder, stem: str, alpha: float) -> dict:
    """``<stem>_t.nii.gz`` and ``<stem>_logp_fwe.nii.gz`` (+ TFCE maps) in ``folder``.

    Returns ``{kind: path}`` with kinds ``t``, ``logp_fwe`` and, with TFCE, ``tfce``,
    ``logp_fwe_tfce``.
    """
    from brainage.neuro.nifti import save_atomic

    folder = Path(folder)
    cut = -np.log10(alpha)
    (lo, hi), note = t_display(result.t, result.t_threshold)
    maps = {"t": stat_image(result.t, mask, reference, (lo, hi), f"{stem} t df={result.df}; {note}",
                            ("t test", (result.df,), "t"))}

    def logp_image(values, what):
        return stat_image(values, mask, reference, (cut, max(cut, float(np.max(values, initial=0)))),
                          f"{stem} -log10 p FWE ({what}); >=cal_min p<{alpha:g}",
                          ("none", (), "-log10pFWE"))

    maps["logp_fwe"] = logp_image(result.logp_fwe, "max |t|")
    if result.tfce is not None:
        top = float(np.max(np.abs(result.tfce), initial=0.0))
        maps["tfce"] = stat_image(result.tfce, mask, reference, (0.0, top), f"{stem} TFCE",
                                  ("none", (), "TFCE"))
        maps["logp_fwe_tfce"] = logp_image(result.logp_fwe_tfce, "TFCE")
    return {kind: save_atomic(img, folder / f"{stem}_{kind}.nii.gz") for kind, img in maps.items()}

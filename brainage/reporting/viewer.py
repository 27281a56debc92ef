"""The report's interactive viewer: NiiVue over the run's maps, readable offline from the run directory.

Every choice (a group map over the explained subjects' mean GM, a subject's map over its GM
image) is a compact copy of the map in ``viewer/data/<key>.js``: the NIfTI file, quantised to 16
bits (a step of |R|max / 32767; zeros stay zeros; header, display range and affine kept), gzipped
and base64-encoded in a script that hands it to the page. Browsers let a ``file://`` page load
scripts beside it but not read files, so this is what lets ``report.html`` open by double-click,
with no server and nothing fetched from the internet. The atlas of the region tables comes along,
so the region under the cursor is named. A copy is loaded only when it is chosen.
"""
from __future__ import annotations

import base64
import gzip
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brainage.neuro.nifti import DisplayRange
from brainage.reporting.niivue_bundle import ViewerUnavailable, write_bundle
from brainage.reporting.viewer_page import CONTROLLER, STYLE

FOLDER = "viewer"
DATA = "viewer/data"
_KEY = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ViewerEntry:
    """One choice of the viewer: a map over the anatomy under it.

    ``background`` is a NIfTI path or an image; ``background_key`` names its copy, so one image
    under several maps (the mean GM under every group map) is written once.
    """

    section: str
    caption: str
    map_path: Path
    background: Path | nib.Nifti1Image
    background_key: str

    @property
    def key(self) -> str:
        """The map copy's name (file-safe)."""
        return "map-" + _KEY.sub("_", Path(self.map_path).name.removesuffix(".nii.gz"))

    @property
    def background_copy(self) -> str:
        """The background copy's name (file-safe)."""
        return "bg-" + _KEY.sub("_", self.background_key)


@dataclass(frozen=True)
class ViewerAtlas:
    """Region id per voxel on the maps' grid (0 = none) and the region names, id-indexed."""

    ids: np.ndarray
    affine: np.ndarray
    names: list


def quantised(img: nib.Nifti1Image, levels: int, dtype, display=None) -> nib.Nifti1Image:
    """``img`` stored as ``dtype`` integers times one slope (so zero stays exactly zero).

    The header (affine, intent, ``descrip``) is kept; ``display`` overrides ``cal_min``/``cal_max``.
    """
    data = np.asarray(img.dataobj, dtype=np.float64)
    if np.issubdtype(dtype, np.unsignedinteger):
        data = np.clip(data, 0.0, None)
    top = float(np.max(np.abs(data), initial=0.0))
    slope = top / levels if top > 0 else 1.0
    out = nib.Nifti1Image(np.round(data / slope).astype(dtype), img.affine, img.header.copy())
    out.header.set_data_dtype(dtype)
    out.header.set_slope_inter(slope, 0.0)
    if display is not None:
        out.header["cal_min"], out.header["cal_max"] = display
    return out


def data_script(key: str, img: nib.Nifti1Image) -> str:
    """The script that hands the gzipped NIfTI ``img`` to the page under ``key``."""
    encoded = base64.b64encode(gzip.compress(img.to_bytes(), compresslevel=6)).decode("ascii")
    return f'brainageViewer.add("{key}", "{encoded}");\n'


def _write(work: Path, key: str, img: nib.Nifti1Image) -> None:
    (work / DATA / f"{key}.js").write_text(data_script(key, img), encoding="ascii")


def _load(image: Path | nib.Nifti1Image) -> nib.Nifti1Image:
    return image if isinstance(image, nib.Nifti1Image) else nib.load(str(image))


def entry_config(entry: ViewerEntry, img: nib.Nifti1Image, shown_note: str) -> dict:
    """What the page needs to show ``entry``: its copies, range, sign and where to start."""
    data = np.asarray(img.dataobj)
    display = DisplayRange.of(img)
    peak = np.unravel_index(int(np.argmax(np.abs(data))), data.shape)
    legend = (f"Shown: |R| ≥ {display.cal_min:.3g} ({shown_note}); colour scale to "
              f"{display.cal_max:.3g}; " + ("red–yellow positive, blue–cyan negative relevance."
                                            if display.signed else "red–yellow."))
    return {"caption": entry.caption, "section": entry.section, "map": entry.key,
            "background": entry.background_copy, "signed": display.signed,
            "peak_mm": [round(float(v), 2) for v in nib.affines.apply_affine(img.affine, peak)],
            "legend": legend, "file": Path(entry.map_path).name}


def write_data(work: Path, entries: list, atlas: ViewerAtlas | None, shown_note: str) -> dict:
    """Every entry's copies (and the atlas) in ``viewer/data``; returns the page's config."""
    (work / DATA).mkdir(parents=True, exist_ok=True)
    configs, backgrounds = [], set()
    for entry in entries:
        img = nib.load(str(entry.map_path))
        _write(work, entry.key, quantised(img, 32767, np.int16))
        if entry.background_copy not in backgrounds:
            background = _load(entry.background)
            top = float(np.max(np.asarray(background.dataobj), initial=0.0)) or 1.0
            _write(work, entry.background_copy,
                   quantised(background, 255, np.uint8, display=(0.0, top)))
            backgrounds.add(entry.background_copy)
        configs.append(entry_config(entry, img, shown_note))
    config = {"data": DATA, "entries": configs, "atlas": None}
    if atlas is not None:
        dtype = np.uint8 if len(atlas.names) <= 256 else np.int16
        _write(work, "atlas", nib.Nifti1Image(atlas.ids.astype(dtype), atlas.affine))
        config["atlas"] = {"key": "atlas", "names": list(atlas.names)}
    return config


def viewer_html(work: Path, entries: list, atlas: ViewerAtlas | None, shown_note: str) -> list:
    """The report's viewer section (writing ``viewer/`` into ``work``); a note if it cannot be."""
    head = ["<h2 id='viewer'>Interactive viewer</h2>"]
    if not entries:
        return head + ["<p>No maps to show.</p>"]
    try:
        write_bundle(work / FOLDER)
    except ViewerUnavailable as exc:
        return head + [f"<p>The interactive viewer is not available: {html.escape(str(exc))}. "
                       "The maps open in FSLeyes, NiiVue or MRIcroGL (see docs/explaining.md).</p>"]
    config = write_data(work, entries, atlas, shown_note)
    return head + [_body(entries), STYLE,
                   "<script type='application/json' id='viewer-config'>"
                   + json.dumps(config).replace("</", "<\\/") + "</script>",
                   f"<script src='{FOLDER}/niivue.js'></script>", CONTROLLER]


def _body(entries: list) -> str:
    groups: dict = {}
    for i, entry in enumerate(entries):
        groups.setdefault(entry.section, []).append(
            f"<option value='{i}'>{html.escape(entry.caption)}</option>")
    options = "".join(f"<optgroup label='{html.escape(section)}'>{''.join(items)}</optgroup>"
                      for section, items in groups.items())
    return ("<p>NiiVue, offline: choose a map; click or drag in a slice to move the cross-hair "
            "(the line below names the atlas region there), scroll to change slice, right-drag "
            "to zoom. Each map opens with the display range its NIfTI header carries "
            "(<code>report.html#map=&lt;n&gt;</code> opens the n-th choice, from 0).</p>"
            f"<p><label>Map: <select id='viewer-choice'>{options}</select></label></p>"
            "<div id='viewer-box'><canvas id='viewer-canvas'></canvas></div>"
            "<p id='viewer-status'>The viewer needs JavaScript and WebGL 2.</p>"
            "<p id='viewer-legend'></p>")

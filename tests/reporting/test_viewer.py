"""The report's viewer: compact copies that decode to the maps, NiiVue's bundle as a classic script."""
import base64
import gzip
import json
import re

import nibabel as nib
import numpy as np
import pytest

from brainage.reporting import niivue_bundle, viewer
from brainage.reporting.explain_figures import header_style
from brainage.reporting.niivue_bundle import ViewerUnavailable, classic_script
from brainage.reporting.viewer import ViewerAtlas, ViewerEntry, data_script, quantised, viewer_html
from tests.builders import AFFINE, SHAPE

FAKE_MODULE = ('var t2=class{constructor(A){this.opts=A}};var vA;var Ih={async initialize({model:A})'
               '{let I=1;if(!vA){console.log("Creating new Niivue instance");let B=A.get("opts")??{},'
               'C=Yg(B);vA=new t2(C)}}};export{Ih as default};\n')


def signed_map(rng):
    data = rng.normal(size=SHAPE).astype(np.float32)
    data[0] = 0.0
    img = nib.Nifti1Image(data, AFFINE)
    img.header["cal_min"], img.header["cal_max"] = 1.5, 2.5
    img.header["descrip"] = b"dtd target=predicted checks=not scored"
    return img


def decode(script: str) -> nib.Nifti1Image:
    key, encoded = re.fullmatch(r'brainageViewer\.add\("([^"]+)", "([^"]+)"\);\n', script).groups()
    return nib.Nifti1Image.from_bytes(gzip.decompress(base64.b64decode(encoded)))


def test_a_viewer_copy_decodes_to_the_map_within_one_quantisation_step(rng):
    img = signed_map(rng)
    back = decode(data_script("map-x", quantised(img, 32767, np.int16)))
    data, original = back.get_fdata(), img.get_fdata()
    step = np.abs(original).max() / 32767
    assert back.get_data_dtype() == np.int16
    assert np.abs(data - original).max() <= step / 2 + 1e-12
    assert not data[0].any()  # zeros stay exactly zero
    np.testing.assert_allclose(back.affine, AFFINE)
    assert (float(back.header["cal_min"]), float(back.header["cal_max"])) == (1.5, 2.5)
    assert back.header["descrip"].item() == img.header["descrip"].item()


def test_a_background_copy_is_eight_bits_with_its_own_range(rng):
    gm = nib.Nifti1Image(rng.uniform(0, 0.9, SHAPE).astype(np.float32), AFFINE)
    back = decode(data_script("bg", quantised(gm, 255, np.uint8, display=(0.0, 0.9))))
    assert back.get_data_dtype() == np.uint8
    assert np.abs(back.get_fdata() - gm.get_fdata()).max() <= 0.9 / 255
    assert float(back.header["cal_max"]) == pytest.approx(0.9)


def test_the_bundle_becomes_a_classic_script_handing_over_the_niivue_class():
    script = classic_script(FAKE_MODULE)
    assert "export{" not in script and script.startswith("(function () {\n\"use strict\";")
    assert script.rstrip().endswith("window.BrainageNiivue = {Niivue: t2};\n})();")
    with pytest.raises(ViewerUnavailable, match="found 0 Niivue constructions"):
        classic_script(FAKE_MODULE.replace("new t2(C)", "make(C)"))


def test_the_installed_bundle_is_written_with_its_licence(tmp_path):
    script = niivue_bundle.write_bundle(tmp_path).read_text()
    assert "window.BrainageNiivue = {Niivue: " in script and "export{" not in script[-200:]
    assert "BSD 2-Clause" in (tmp_path / niivue_bundle.LICENSE_NAME).read_text()


def test_the_viewer_section_lists_every_entry_and_writes_its_copies(tmp_path, rng):
    path = tmp_path / "maps" / "sub-01_dtd_predicted.nii.gz"
    path.parent.mkdir()
    nib.save(signed_map(rng), str(path))
    gm = nib.Nifti1Image(rng.uniform(0, 1, SHAPE).astype(np.float32), AFFINE)
    entries = [ViewerEntry("Subjects", "sub-01: dtd", path, gm, "gm-sub-01"),
               ViewerEntry("Subjects", "sub-01 again", path, gm, "gm-sub-01")]
    atlas = ViewerAtlas(np.arange(np.prod(SHAPE)).reshape(SHAPE) % 3, AFFINE, ["none", "A", "B"])
    text = "\n".join(viewer_html(tmp_path, entries, atlas, "the strongest 5 %"))
    config = json.loads(re.search(r"id='viewer-config'>(.*?)</script>", text, re.S).group(1))
    assert [e["caption"] for e in config["entries"]] == ["sub-01: dtd", "sub-01 again"]
    first = config["entries"][0]
    assert first["signed"] and first["map"] == "map-sub-01_dtd_predicted"
    assert "|R| ≥ 1.5 (the strongest 5 %)" in first["legend"]
    assert sorted(p.name for p in (tmp_path / "viewer" / "data").iterdir()) == [
        "atlas.js", "bg-gm-sub-01.js", "map-sub-01_dtd_predicted.js"]
    assert config["atlas"]["names"] == ["none", "A", "B"]
    assert "<script src='viewer/niivue.js'></script>" in text
    assert not re.search(r"(src|href)\s*=\s*['\"]?https?:", text)


def test_without_the_bundle_the_report_says_so(tmp_path, rng, monkeypatch):
    def missing():
        raise ViewerUnavailable("ipyniivue is not installed")

    monkeypatch.setattr(niivue_bundle, "bundle_path", missing)
    niivue_bundle._script_and_notice.cache_clear()
    try:
        text = "\n".join(viewer_html(tmp_path, [ViewerEntry("G", "c", tmp_path / "m.nii.gz",
                                                            tmp_path / "b.nii.gz", "b")],
                                     None, "note"))
    finally:
        niivue_bundle._script_and_notice.cache_clear()
    assert "not available: ipyniivue is not installed" in text
    assert not (tmp_path / viewer.FOLDER).exists()


def test_figures_use_the_header_range_and_a_diverging_map_for_signed_relevance(rng):
    img = signed_map(rng)
    assert header_style(img) == {"threshold": pytest.approx(1.5), "vmax": pytest.approx(2.5),
                                 "cmap": "cold_hot"}
    positive = nib.Nifti1Image(np.abs(img.get_fdata()).astype(np.float32), AFFINE, img.header)
    assert header_style(positive)["cmap"] == "hot"

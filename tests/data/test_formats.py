"""Data formats: one module each, found by the package's discovery; ``data.format`` names one.

A format written to a temporary file (``@register_format``) is imported by
``brainage.data.formats``' own discovery and reads a tiny cohort through ``prepare_data`` with a
preset file beside ``configs/data/``; an unknown ``data.format`` is one line naming the known ones;
the built-in formats' cache keys keep the form earlier caches were built with.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import brainage.data.formats as formats
from brainage.data.cache import file_fingerprint
from brainage.data.cohort import prepare_data
from brainage.data.entries import _common_inputs, cache_entries, locate_all
from brainage.data.formats import (
    DataFormat,
    format_names,
    get_format,
    register_format,
    unregister_format,
)
from brainage.data.settings import DataSettings
from brainage.errors import DataError
from tests.builders import AFFINE, CONFIGS, SHAPE, compose_data

NPZ_MODULE = '''"""data.format: npz -- one .npz archive: an ``affine`` and one array per subject id."""
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from brainage.config_values import text
from brainage.data.cache import file_fingerprint
from brainage.data.formats import DataFormat, Located, SourceGrid, register_format
from brainage.errors import DataError


@register_format("npz")
@dataclass(frozen=True)
class NpzArchive(DataFormat):
    npz_path: str

    @classmethod
    def from_config(cls, data):
        return cls(npz_path=data.value("npz_path", text, "an .npz archive"))

    @cached_property
    def names(self):
        with np.load(self.npz_path) as archive:
            return set(archive.files)

    def locate(self, subject_id, row):
        if subject_id not in self.names:
            return Located(subject_id, self.npz_path,
                           error=DataError(f"{subject_id}: no array in {self.npz_path}"))
        return Located(subject_id, f"{self.npz_path}[{subject_id}]", where=subject_id)

    def open_volume(self, located):
        if located.error is not None:
            raise located.error
        with np.load(self.npz_path) as archive:
            return archive[located.where].astype(np.float32), archive["affine"]

    def cache_key(self, located):
        return ["npz", file_fingerprint(self.npz_path), [loc.subject_id for loc in located]]

    def source_grid(self, located, shape, affine, workers):
        return SourceGrid(tuple(shape), affine, f"the arrays of {self.npz_path} have")
'''

NPZ_PRESET = """# One .npz archive of every subject's GM: <root>/gm.npz, participants at <root>/participants.csv.
defaults:
  - synthetic
  - _self_
name: npz
format: npz
root: data/npz
participants: ${.root}/participants.csv
npz_path: ${.root}/gm.npz
n_subjects: null
generate: false
source_shape: null
crop_shape: [5, 6, 7]
crop_offset: [1, 1, 2]
"""


@pytest.fixture
def npz_format(tmp_path, monkeypatch):
    """``brainage/data/formats/npz.py`` as if added to the package (plus a private helper that
    discovery must leave alone), imported by the package's discovery; forgotten afterwards."""
    folder = tmp_path / "formats"
    folder.mkdir()
    (folder / "npz.py").write_text(NPZ_MODULE)
    (folder / "_helper.py").write_text("raise ImportError('a _private module is never imported')\n")
    monkeypatch.setattr(formats, "__path__", [*formats.__path__, str(folder)])
    try:
        found = formats.import_public_modules(formats.__path__, "brainage.data.formats.")
        yield found
    finally:
        unregister_format("npz")
        sys.modules.pop("brainage.data.formats.npz", None)
        if hasattr(formats, "npz"):
            delattr(formats, "npz")


def _compose_preset(search, preset: str, *overrides):
    """``configs/data/<preset>.yaml``, found in ``search`` beside ``configs/``, as a stage sees it."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(overrides=[f"hydra.searchpath=[file://{search}]", f"+data={preset}", "+seed=0",
                                 *(f"data.{o}" for o in overrides)])
    return cfg.data


def _npz_cohort(root, rng):
    """15 subjects in the three default age bins, 7 x 8 x 9 volumes in one archive."""
    ages = np.repeat([25.0, 55.0, 80.0], 5) + rng.uniform(0, 5, 15)
    ids = [f"sub-{i:02d}" for i in range(len(ages))]
    volumes = {sid: rng.uniform(0, 1, SHAPE).astype(np.float32) for sid in ids}
    root.mkdir(parents=True)
    np.savez(root / "gm.npz", affine=AFFINE, **volumes)
    pd.DataFrame({"subject_id": ids, "age": ages}).to_csv(root / "participants.csv", index=False)
    return volumes


def test_a_format_module_is_discovered_and_reads_a_cohort(npz_format, tmp_path, rng):
    assert "brainage.data.formats.npz" in npz_format
    assert not any(name.endswith("._helper") for name in npz_format)
    assert "npz" in format_names() and get_format("npz").name == "npz"
    search = tmp_path / "search"
    (search / "data").mkdir(parents=True)
    (search / "data" / "npz.yaml").write_text(NPZ_PRESET)
    root = tmp_path / "npz"
    volumes = _npz_cohort(root, rng)
    cfg = _compose_preset(search, "npz", f"root={root}", f"cache.dir={tmp_path / 'cache'}",
                          "cache.dtype=float32", "split=[0.6,0.2,0.2]")
    settings = DataSettings.from_cfg(cfg)
    assert settings.format == "npz" and settings.source.npz_path == str(root / "gm.npz")

    prep = prepare_data(settings, progress=False)
    assert prep.volumes.shape == (15, 5, 6, 7) and "path" not in prep.table.columns
    for sid, volume in zip(prep.table["subject_id"], prep.volumes[:]):
        np.testing.assert_array_equal(volume, volumes[sid][1:6, 1:7, 2:9])
    np.testing.assert_allclose(prep.grid.affine, AFFINE)
    assert prep.grid.source_shape == SHAPE and prep.grid.crop_offset == (1, 1, 2)


def test_the_format_names_the_volumes_in_the_grid_messages(npz_format, tmp_path, rng):
    search = tmp_path / "search"
    (search / "data").mkdir(parents=True)
    (search / "data" / "npz.yaml").write_text(NPZ_PRESET)
    root = tmp_path / "npz"
    _npz_cohort(root, rng)
    cfg = _compose_preset(search, "npz", f"root={root}", f"cache.dir={tmp_path / 'cache'}",
                          "crop_shape=[8,8,8]")
    with pytest.raises(DataError, match=rf"the arrays of {root / 'gm.npz'} have shape \(7, 8, 9\)"):
        prepare_data(cfg, progress=False)


def _listed(names) -> str:
    quoted = [f"'{n}'" for n in sorted(names)]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def test_an_unknown_format_is_one_line_naming_the_known_ones():
    known = format_names()
    assert {"nifti", "npy"} <= set(known)
    with pytest.raises(DataError) as info:
        DataSettings.from_cfg(compose_data("pac2019", "format=dicom"))
    assert str(info.value) == f"data.format='dicom'; expected {_listed(known)}"
    if known == ("nifti", "npy"):  # the built-in formats: the message as it has always been
        assert str(info.value) == "data.format='dicom'; expected 'nifti' or 'npy'"

    @register_format("zzz")
    class Zzz(DataFormat):
        pass

    try:
        assert format_names() == (*known, "zzz")
        with pytest.raises(DataError) as info:
            DataSettings.from_cfg(compose_data("pac2019", "format=dicom"))
        assert str(info.value) == f"data.format='dicom'; expected {_listed([*known, 'zzz'])}"
        with pytest.raises(DataError) as info:
            get_format("dicom")
        assert str(info.value) == f"data.format='dicom'; expected {_listed([*known, 'zzz'])}"
    finally:
        unregister_format("zzz")
    assert format_names() == known


def test_a_name_is_registered_once():
    known = format_names()
    with pytest.raises(ValueError, match="format 'npy' is already registered"):
        register_format("npy")(type("Other", (DataFormat,), {}))
    with pytest.raises(TypeError, match="is not a DataFormat subclass"):
        register_format("plain")(object)
    assert format_names() == known


def test_the_built_in_formats_keep_their_cache_keys(tiny_cohort, tmp_path, rng):
    """The key inputs are those caches were built with before the formats were modules (no silent
    rebuild of data/cache): NIfTI, each image's fingerprint; npy, the array's, the ids and rows."""
    root, cfg, table = tiny_cohort
    settings = DataSettings.from_cfg(cfg)
    rows = pd.DataFrame({"subject_id": table["participant_id"], "_row": range(len(table))})
    _, key = cache_entries(settings, locate_all(settings.source, rows))
    images = [file_fingerprint(root / "gm" / f"{sid}_gm.nii.gz") for sid in rows["subject_id"]]
    assert key == ["nifti", images, _common_inputs(settings)]

    np.save(tmp_path / "gm.npy", rng.uniform(0, 1, (4, *SHAPE)).astype(np.float32))
    settings = DataSettings.from_cfg(compose_data("npy", f"npy_path={tmp_path / 'gm.npy'}"))
    rows = pd.DataFrame({"subject_id": ["row-0003", "row-0001"], "_row": [3, 1]})
    _, key = cache_entries(settings, locate_all(settings.source, rows))
    assert key == ["npy", file_fingerprint(tmp_path / "gm.npy"), ["row-0003", "row-0001"], [3, 1],
                   _common_inputs(settings)]
    assert [type(r) for r in key[3]] == [int, int]  # JSON numbers, as before

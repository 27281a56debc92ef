"""A planted signal in real grey matter (``data.plant_into``): a derivative as make preprocess
writes it, planted voxel for voxel, labels drawn independently of the anatomy, the data stage
writing it on first use and reusing it, and clear refusals."""
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.data.cohort import prepare_data
from brainage.data.derivative import PARTICIPANTS, derivative_dir, subject_file
from brainage.data.real_plant import RealPlantSettings, drawn_labels, ensure_planted_real
from brainage.data.settings import DataSettings
from brainage.data.synthetic.anatomy import build_anatomy
from brainage.data.synthetic.plant import planted_mask
from brainage.errors import DataError
from tests.builders import compose_data
from tests.data.synthetic.cohort_files import oblique_grid

GRID = oblique_grid()
REGIONS = "[Right_OFuG_occipital_fusiform_gyrus,Left_SOG_superior_occipital_gyrus]"


@pytest.fixture(scope="module")
def derivative(tmp_path_factory):
    """A raw root's derivative with 10 subjects' unmodulated maps on the oblique grid; the
    tenth has none (excluded by make preprocess), the ninth has no age."""
    tmp = tmp_path_factory.mktemp("real_plant")
    raw = tmp / "raw"
    raw.mkdir()
    folder = derivative_dir(raw, tmp / "derivatives")
    rng = np.random.default_rng(3)
    ids = [f"sub-R{i:02d}" for i in range(10)]
    ages = [float(a) for a in rng.uniform(20, 80, 10).round(1)]
    ages[8] = np.nan
    for sid in ids[:9]:
        path = subject_file(folder, sid, "unmodulated")
        path.parent.mkdir(parents=True)
        nib.save(nib.Nifti1Image(rng.uniform(0, 1, GRID.source_shape).astype(np.float32),
                                 GRID.affine), str(path))
    pd.DataFrame({"participant_id": ids, "age": ages, "sex": ["F", "M"] * 5}).to_csv(
        folder / PARTICIPANTS, sep="\t", index=False, na_rep="n/a")
    return {"tmp": tmp, "raw": raw, "folder": folder, "ids": ids, "ages": ages}


def _data(derivative, *more, root="planted"):
    return compose_data("ixi_planted", f"root={derivative['tmp'] / root}",
                        f"plant_into.root={derivative['raw']}",
                        f"plant_into.derivatives_dir={derivative['tmp'] / 'derivatives'}",
                        "source_shape=null", "crop_shape=[37,45,35]", "crop_offset=[2,2,2]",
                        f"cache.dir={derivative['tmp'] / 'cache'}", "split=[0.34,0.33,0.33]",
                        *more)


@pytest.fixture(scope="module")
def planted(derivative):
    settings = DataSettings.from_cfg(_data(derivative))
    root = ensure_planted_real(settings.plant_into, settings.root, progress=False)
    return settings, root


def test_every_subject_with_a_map_is_planted_voxel_for_voxel(derivative, planted):
    settings, root = planted
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    assert list(table["subject_id"]) == derivative["ids"][:9]  # the tenth has no map
    np.testing.assert_array_equal(table["real_age"].to_numpy(), np.array(derivative["ages"][:9]))
    mask = planted_mask(build_anatomy(GRID), settings.plant_into.plant)
    written = np.asarray(nib.load(str(root / "ground_truth" / "planted.nii.gz")).dataobj) > 0
    np.testing.assert_array_equal(written, mask)
    assert 0 < mask.sum() < mask.size // 50
    for sid, dose in zip(table["subject_id"], table["planted_dose"]):
        source = np.asarray(nib.load(str(subject_file(derivative["folder"], sid,
                                                      "unmodulated"))).dataobj)
        out = nib.load(str(root / "gm" / f"{sid}_gm.nii.gz"))
        np.testing.assert_allclose(out.affine, GRID.affine)
        gm = np.asarray(out.dataobj)
        np.testing.assert_array_equal(gm[~mask], source[~mask])
        np.testing.assert_allclose(gm[mask], source[mask] * np.float32(1 - 0.5 * dose), rtol=1e-6)
    regions = pd.read_csv(root / "ground_truth" / "regions.csv")
    assert set(regions["role"]) == {"control", "planted", "other"}


def test_labels_are_balanced_drawn_inside_their_bin_and_record_the_dose(planted):
    settings, root = planted
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    edges = np.array(settings.bin_edges)
    bins = np.searchsorted(edges, table["age"], side="right") - 1
    np.testing.assert_array_equal(table["planted_dose"], bins / 2)
    assert sorted(np.bincount(bins)) == [3, 3, 3]
    classes, ages = drawn_labels(300, edges, seed=5)
    assert np.bincount(classes).tolist() == [100, 100, 100]
    assert np.all((ages >= edges[classes]) & (ages < edges[classes + 1]))
    # Independent of the anatomy: another seed draws other classes for the same subjects.
    assert not np.array_equal(drawn_labels(300, edges, seed=6)[0], classes)


def test_the_data_stage_writes_it_once_then_reuses_it(derivative, tmp_path):
    data = _data(derivative, root="staged")
    prep = prepare_data(data, seed=0, progress=False)
    root = derivative["tmp"] / "staged"
    assert len(prep.table) == 9 and (root / "ground_truth" / "planted.nii.gz").is_file()
    stamp = (root / "cohort.json").stat().st_mtime_ns
    prepare_data(data, seed=0, progress=False)
    assert (root / "cohort.json").stat().st_mtime_ns == stamp
    assert json.loads((root / "cohort.json").read_text())["n_subjects"] == 9
    with pytest.raises(DataError, match="holds another cohort"):
        prepare_data(_data(derivative, "plant_into.seed=1", root="staged"), seed=0, progress=False)


@pytest.mark.parametrize("override, message", [
    ("plant_into.planted.dose=linear", "dose must be bins"),
    ("plant_into.planted.depth=2", "depth"),
    ("plant_into.seed=x", "plant_into.seed='x'; expected a seed"),
])
def test_bad_settings_are_refused_in_one_line(derivative, override, message):
    with pytest.raises(DataError, match=message):
        DataSettings.from_cfg(_data(derivative, override))


def test_a_missing_derivative_names_the_command_that_makes_it(derivative, tmp_path):
    plant = DataSettings.from_cfg(_data(derivative)).plant_into.plant
    settings = RealPlantSettings(str(tmp_path / "raw"), str(tmp_path / "d"), False, 0, plant)
    with pytest.raises(DataError, match=r"make it with `make preprocess data.root="):
        ensure_planted_real(settings, tmp_path / "out")
    assert not (tmp_path / "out").exists()

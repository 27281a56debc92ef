"""Subjects' deformations redrawn from a written cohort: they reproduce the images exactly, a box of
the pull-back is the box of the whole, and a hand-made map moves with a known translation."""
import dataclasses

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.data import synthetic as sy
from brainage.data.synthetic.deformation import cohort_draws, warp_to_subject
from brainage.data.synthetic.render import source_coordinates
from brainage.errors import DataError


def test_redrawn_subjects_render_their_written_images(cohort, small_grid):
    draws = cohort_draws(cohort)
    assert draws.grid.source_shape == small_grid.source_shape
    np.testing.assert_allclose(draws.grid.affine, small_grid.affine, atol=1e-6)
    anatomy = sy.build_anatomy(draws.grid)
    maps = sy.loss_maps(anatomy, draws.settings)
    table = pd.read_csv(cohort / "participants.tsv", sep="\t")
    assert list(draws.draws) == table["subject_id"].tolist()
    for sid in table["subject_id"].iloc[[0, 17]]:
        written = np.asarray(nib.load(str(cohort / "gm" / f"{sid}_gm.nii.gz")).dataobj)
        np.testing.assert_array_equal(sy.render_subject(anatomy, maps, draws.draws[sid], draws.settings),
                                      written)


def test_a_box_of_the_pull_back_is_that_box_of_the_whole(cohort):
    draws = cohort_draws(cohort)
    anatomy = sy.build_anatomy(draws.grid)
    draw, settings = next(iter(draws.draws.values())), draws.settings
    box = (slice(3, 17), slice(20, 31), slice(5, 14))
    whole = source_coordinates(anatomy, draw, settings)
    np.testing.assert_allclose(source_coordinates(anatomy, draw, settings, box),
                               whole[(slice(None),) + box], rtol=0, atol=1e-4)


def test_a_hand_made_map_moves_with_a_translation():
    """Pull-back by +3 mm in world x on a grid with x voxels of -3 mm: the map moves one voxel up i."""
    affine = np.array([[-3.0, 0, 0, 40], [0, 2.0, 0, -20], [0, 0, 2.5, -10], [0, 0, 0, 1]])
    shape = (9, 7, 8)
    anatomy = sy.Anatomy(affine, shape, np.zeros(shape, np.float32), np.zeros(shape, np.int32),
                         pd.DataFrame(), np.zeros((3,) + shape, np.float32))
    settings = sy.SyntheticSettings.from_dict({"ventricle_expansion_mm": 0.0})
    still = sy.SubjectDraw(50.0, 1.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), np.zeros((3, 3, 3, 3), np.float32),
                           1.0, 0.0, 0.0, np.random.SeedSequence(0))
    labels = np.zeros(shape, np.float32)
    labels[2:5, 1:4, 3:6] = 1.0
    np.testing.assert_array_equal(warp_to_subject(labels, anatomy, still, settings, order=0), labels)
    moved = dataclasses.replace(still, translation_mm=(3.0, 0.0, 0.0))
    expected = np.zeros(shape, np.float32)
    expected[3:6, 1:4, 3:6] = 1.0
    np.testing.assert_allclose(warp_to_subject(labels, anatomy, moved, settings), expected, atol=1e-6)
    box = (slice(2, 7), slice(0, 7), slice(3, 8))
    np.testing.assert_allclose(warp_to_subject(labels, anatomy, moved, settings, box), expected[box],
                               atol=1e-6)


def test_a_folder_without_a_synthetic_record_or_with_an_edited_table_is_refused(tmp_path, cohort):
    with pytest.raises(DataError, match="holds no synthetic cohort record"):
        cohort_draws(tmp_path)
    edited = tmp_path / "edited"
    edited.mkdir()
    (edited / "cohort.json").write_text((cohort / "cohort.json").read_text())
    table = pd.read_csv(cohort / "participants.tsv", sep="\t")
    table.iloc[::-1].to_csv(edited / "participants.tsv", sep="\t", index=False)
    with pytest.raises(DataError, match="does not list the subjects its cohort.json redraws"):
        cohort_draws(edited)

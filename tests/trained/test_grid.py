"""grid.json: the grid and data format a model was trained on, as training writes it."""
import json

import numpy as np
import pytest

from brainage.errors import TrainedRunError
from brainage.neuro.grid import Grid
from brainage.trained.grid import GRID_FILE, read_trained_grid, voxel_size, write_trained_grid
from tests.builders import AFFINE


def test_written_and_read_back(tmp_path):
    grid = Grid.build(AFFINE, (11, 12, 13), (9, 10, 11), (1, 1, 1))
    write_trained_grid(tmp_path, {"format": "preprocessed", "modulated": False}, grid)
    found = read_trained_grid(tmp_path)
    assert (found.format, found.modulated, found.preprocessing) == (
        "preprocessed", False, "preprocessed (unmodulated)")
    np.testing.assert_allclose(found.grid.affine, AFFINE)
    assert (found.grid.source_shape, found.grid.crop_offset, found.grid.crop_shape) == (
        (11, 12, 13), (1, 1, 1), (9, 10, 11))
    assert found.voxel_size == voxel_size(AFFINE) == (2.0, 2.502, 3.0)
    write_trained_grid(tmp_path, {"format": "nifti"}, grid)
    assert read_trained_grid(tmp_path).preprocessing == "nifti"


def test_a_run_without_one_has_none_and_a_broken_one_is_an_error(tmp_path):
    assert read_trained_grid(tmp_path) is None
    (tmp_path / GRID_FILE).write_text(json.dumps({"format": "nifti"}))
    with pytest.raises(TrainedRunError, match=r"grid\.json cannot be read \(KeyError"):
        read_trained_grid(tmp_path)

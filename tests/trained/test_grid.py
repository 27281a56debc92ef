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


def _derivative(tmp_path, raw_name="raw", description=None, record=None):
    """A derivative folder of ``tmp_path/raw_name`` with a description and/or one subject record."""
    from brainage.data.derivative import DESCRIPTION, derivative_dir, subject_file

    derivative = derivative_dir(tmp_path / raw_name, tmp_path / "derivatives")
    derivative.mkdir(parents=True)
    if description is not None:
        (derivative / DESCRIPTION).write_text(json.dumps({"StepSettings": description}))
    if record is not None:
        path = subject_file(derivative, "sub-01", "record")
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"steps": record}))
    return derivative


def test_a_preprocessed_runs_grid_records_its_derivatives_step_settings(tmp_path):
    grid = Grid.build(AFFINE, (11, 12, 13), (9, 10, 11), (1, 1, 1))
    _derivative(tmp_path, description={"mask_threshold": 0.15, "n4_iterations": [50, 25]})
    data = {"format": "preprocessed", "modulated": False, "root": str(tmp_path / "raw"),
            "derivatives_dir": str(tmp_path / "derivatives")}
    write_trained_grid(tmp_path, data, grid)
    assert read_trained_grid(tmp_path).steps == {"mask_threshold": 0.15, "n4_iterations": [50, 25]}
    write_trained_grid(tmp_path, {**data, "root": str(tmp_path / "elsewhere")}, grid)
    assert read_trained_grid(tmp_path).steps is None     # no derivative there: nothing to compare
    write_trained_grid(tmp_path, {**data, "format": "nifti"}, grid)
    assert read_trained_grid(tmp_path).steps is None


def test_a_derivative_still_being_made_gives_its_first_subjects_steps(tmp_path):
    from brainage.data.derivative import step_settings

    derivative = _derivative(tmp_path, record={"mask_threshold": 0.05})
    assert step_settings(derivative) == {"mask_threshold": 0.05}
    assert step_settings(tmp_path / "nowhere") is None


def test_step_settings_differ_only_where_both_are_known():
    from brainage.trained.grid import changed_steps

    assert changed_steps({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3], "c": 0}) == ["b", "c"]
    assert changed_steps({"a": 1}, None) == [] and changed_steps(None, {"a": 1}) == []

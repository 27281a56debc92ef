"""Named reference brains: computed from the training split only, once per name."""
import numpy as np
import pytest

from brainage.data.reference_images import reference_image, with_reference_images
from brainage.errors import DataError
from tests.builders import tiny_data


def test_training_mean_and_youngest_mean_average_the_training_split_only():
    prep = tiny_data()
    volumes = np.asarray(prep.volumes, np.float64)
    train = prep.table["split"].to_numpy() == "train"
    young = train & (prep.table["bin"].to_numpy() == 0)
    np.testing.assert_allclose(reference_image(prep, "training_mean")[..., 0],
                               volumes[train].mean(0), rtol=1e-6)
    np.testing.assert_allclose(reference_image(prep, "youngest_mean")[..., 0],
                               volumes[young].mean(0), rtol=1e-6)
    assert reference_image(prep, "zeros").shape == prep.input_shape
    assert not reference_image(prep, "zeros").any()


def test_the_explained_subjects_do_not_shape_their_reference():
    prep = tiny_data()
    before = reference_image(prep, "training_mean")
    test = prep.indices("test")
    volumes = np.array(prep.volumes)
    volumes[test] = 1.0
    prep.volumes = volumes
    np.testing.assert_array_equal(reference_image(prep, "training_mean"), before)


def test_named_references_become_images_and_numbers_stay():
    prep = tiny_data()
    methods = {"deeplift": {"name": "deeplift", "reference": "youngest_mean"},
               "dtd_reference": {"name": "dtd_reference", "reference": "youngest_mean"},
               "dl0": {"name": "deeplift", "reference": 0.0}, "dtd": {"name": "dtd"}}
    resolved = with_reference_images(methods, prep)
    assert resolved["deeplift"]["reference"] is resolved["dtd_reference"]["reference"]  # once
    assert resolved["deeplift"]["reference"].shape == prep.input_shape
    assert resolved["dl0"]["reference"] == 0.0 and "reference" not in resolved["dtd"]
    assert methods["deeplift"]["reference"] == "youngest_mean"  # the request is not changed


def test_an_unknown_name_is_refused_with_the_choices():
    with pytest.raises(DataError, match="reference 'old'; expected a number or one of "
                                        "training_mean, youngest_mean, zeros"):
        reference_image(tiny_data(), "old")


def test_integrated_gradients_baseline_may_name_a_reference_too():
    prep = tiny_data()
    resolved = with_reference_images(
        {"ig": {"name": "integrated_gradients", "baseline": "training_mean"}}, prep)
    np.testing.assert_array_equal(resolved["ig"]["baseline"],
                                  reference_image(prep, "training_mean"))

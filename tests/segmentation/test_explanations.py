"""The predicted mask's summed logits explained: DTD conserves on the region target (≤ 1e-5),
against the logits computed here; guided backprop runs; Dice by hand."""
import keras
import numpy as np
import pytest

from brainage.errors import SegmentationError
from brainage.segmentation.explanations import explain_regions
from brainage.segmentation.network import build_unet
from brainage.segmentation.scores import dice

# Eager (compile: false): tracing three graphs costs more than running them on these tiny inputs.
METHODS = {"guided_backprop": {"name": "guided_backprop", "compile": False},
           "dtd": {"name": "dtd", "low": 0.0, "high": 1.0, "compile": False},
           "lrp": {"name": "lrp_composite", "compile": False}}


@pytest.fixture(scope="module")
def unet_and_masks():
    keras.utils.set_random_seed(3)
    model = build_unet((12, 16, 8, 1), (3, 4, 5))
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (2, 12, 16, 8, 1)).astype("float32")
    logits = np.asarray(model(x), np.float64)[..., 0]
    return model, x, logits, logits > 0


def test_dtd_conserves_the_summed_logits_of_the_predicted_mask(unet_and_masks):
    model, x, logits, masks = unet_and_masks
    assert masks.any(axis=(1, 2, 3)).all() and not masks.all()
    explained = {e.tag: e for e in explain_regions(model, x, masks, METHODS)}
    expected = np.array([logits[i][masks[i]].sum() for i in range(2)])
    dtd = explained["dtd"]
    np.testing.assert_allclose(dtd.outputs, expected, rtol=1e-5)
    np.testing.assert_allclose(dtd.maps.reshape(2, -1).sum(1, dtype=np.float64), expected, rtol=1e-5)
    assert dtd.conservation()["rel_error_max"] <= 1e-5 and dtd.conservation()["layer_wise"]
    assert dtd.maps.shape == x.shape[:-1] and (dtd.maps >= -1e-7).all()  # z+ and zB on [0, 1]: no negatives
    guided = explained["guided_backprop"]
    assert guided.rel_error is None and guided.conservation()["rel_error_max"] is None
    assert np.abs(guided.maps).max() > 0 and not np.allclose(guided.maps, dtd.maps)
    assert explained["lrp"].books_rel_error.max() <= 1e-5  # what ε and γ do not pass on is a sink


def test_an_empty_mask_and_a_bad_method_parameter_are_named(unet_and_masks):
    model, x, _, masks = unet_and_masks
    empty = masks.copy()
    empty[1] = False
    with pytest.raises(SegmentationError, match=r"predicted mask of input\(s\) \[1\] is empty"):
        explain_regions(model, x, empty, METHODS)
    with pytest.raises(SegmentationError, match="explain.methods.bad"):
        explain_regions(model, x, masks, {"bad": {"name": "dtd", "lowest": 0.0}})


def test_dice_by_hand():
    p = np.zeros((3, 2, 2, 2), bool)
    t = np.zeros((3, 2, 2, 2), bool)
    p[0, 0, 0, :] = True
    t[0, 0, :, 0] = True  # one voxel shared of 2 + 2
    p[1, 0] = True  # nothing shared
    np.testing.assert_allclose(dice(p, t), [0.5, 0.0, 1.0])  # both empty: 1

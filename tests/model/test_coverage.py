"""Which input voxels a network's valid poolings leave out of every output, against the gradient
of a network whose every unit is active (a voxel no output depends on has gradient exactly 0)."""
import logging

import numpy as np
import pytest

from brainage.model.parts import exact_crop_sizes, unseen_input
from brainage.model.resnet3d import build_resnet3d
from brainage.model.sfcn import build_sfcn
from brainage.model.taylor2019 import build_model

BUILDERS = {"taylor2019": lambda shape: build_model(shape, widths=(2, 3), dense_units=4),
            "resnet3d": lambda shape: build_resnet3d(shape, widths=(2, 3, 3), dense_units=4),
            "resnet3d_pool3": lambda shape: build_resnet3d(shape, widths=(2, 3), dense_units=4,
                                                           pool_size=3),
            "sfcn": lambda shape: build_sfcn(shape, widths=(2, 3, 3)),
            "sfcn_pool3": lambda shape: build_sfcn(shape, widths=(2, 3), pool_size=3)}


def _unseen_by_gradient(model, shape) -> dict:
    """Per axis, the input's high-index slices whose gradient is exactly zero, with every weight
    positive and the input positive, so every ReLU passes."""
    import keras
    import tensorflow as tf

    for weights in model.weights:
        if "moving_variance" in weights.path or "gamma" in weights.path:
            weights.assign(np.ones(weights.shape, np.float32))
        elif "moving_mean" in weights.path or "beta" in weights.path or "bias" in weights.path:
            weights.assign(np.zeros(weights.shape, np.float32))
        else:
            weights.assign(np.full(weights.shape, 0.1, np.float32))
    x = tf.constant(np.random.default_rng(0).uniform(1, 2, (1, *shape, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = keras.ops.sum(model(x, training=False))
    seen = np.abs(tape.gradient(total, x).numpy()[0, ..., 0]) > 0
    found = {}
    for axis, name in enumerate("xyz"):
        profile = seen.any(axis=tuple(a for a in range(3) if a != axis))
        assert profile[0], "the low-index end is always seen"
        n = len(profile) - 1 - int(np.flatnonzero(profile)[-1])
        if n:
            found[name] = n
    return found


@pytest.mark.parametrize("architecture", sorted(BUILDERS))
@pytest.mark.parametrize("shape", [(19, 22, 25), (20, 23, 26), (21, 24, 27)])
def test_the_unseen_voxels_are_those_with_no_gradient(architecture, shape):
    model = BUILDERS[architecture](shape)
    assert unseen_input(model) == _unseen_by_gradient(model, shape)


@pytest.mark.parametrize("architecture", sorted(BUILDERS))
def test_the_suggested_crop_leaves_nothing_unseen(architecture):
    shape = (19, 22, 25)
    sizes = exact_crop_sizes(BUILDERS[architecture](shape), shape)
    assert all(abs(s - n) <= 24 for s, n in zip(sizes, shape))
    assert unseen_input(BUILDERS[architecture](tuple(sizes))) == {}


def test_the_seeds_crop_leaves_the_high_x_and_z_ends_unseen():
    """The seed's 100 x 124 x 104 box: block 4's pooling gets 5 positions along x and z."""
    model = build_model((100, 124, 104))
    assert unseen_input(model) == {"x": 8, "z": 12}
    assert exact_crop_sizes(model, (100, 124, 104)) == [108, 124, 108]


def test_training_warns_naming_the_axes_and_a_crop_that_pools_exactly(caplog):
    from brainage.training.model_setup import warn_unseen_input

    model = BUILDERS["taylor2019"]((19, 22, 25))
    unseen, exact = unseen_input(model), exact_crop_sizes(model, (19, 22, 25))
    assert set(unseen) == {"x", "y", "z"} and unseen_input(BUILDERS["taylor2019"](tuple(exact))) == {}
    with caplog.at_level(logging.WARNING):
        warn_unseen_input(model, (19, 22, 25, 1))
        warn_unseen_input(BUILDERS["taylor2019"](tuple(exact)), (*exact, 1))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(
        f"model: its poolings leave the last {unseen['x']} voxels along x and {unseen['y']} voxels "
        f"along y and {unseen['z']} voxels along z of the 19 x 22 x 25 input out of every output")
    assert f"data.crop_shape=[{','.join(map(str, exact))}] pools exactly" in warnings[0]

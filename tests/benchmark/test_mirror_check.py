"""The mirror check: an imbalance a model's weights carry stays under mirroring, one the anatomy
carries swaps sides."""
import json

import numpy as np
import pytest

from brainage.benchmark.mirror_check import half_ratio, main, mirror_balance

SHAPE = (6, 4, 3)


def _linear(weights):
    """A linear 'model' and its exact reference-based map, (x - ref) * w."""
    def explain(x, ref):
        return (x - ref) * weights

    def predict(x):
        return (x * weights).sum(axis=(1, 2, 3))

    return explain, predict


def test_the_halves_ratio_leaves_an_odd_middle_out():
    maps = np.zeros((1, 5, 1, 1))
    maps[0, :, 0, 0] = [1, -2, 100, 3, 0]
    assert half_ratio(maps) == pytest.approx(3 / 3)


def test_an_imbalance_in_the_weights_stays_and_one_in_the_anatomy_swaps():
    rng = np.random.default_rng(0)
    left_heavy = np.ones(SHAPE)
    left_heavy[:3] = 2.0                                 # the model weighs the low-x half twice
    volumes = rng.uniform(1, 2, (4, *SHAPE))
    volumes = (volumes + volumes[:, ::-1]) / 2           # mirror-symmetric anatomy
    found = mirror_balance(*_linear(left_heavy), volumes, np.zeros(SHAPE))
    assert found["ratio"] == pytest.approx(2.0) and found["ratio_mirrored"] == pytest.approx(2.0)
    assert (found["network_ratio"], found["anatomy_ratio"]) == pytest.approx((2.0, 1.0))
    lopsided = volumes.copy()
    lopsided[:, :3] *= 3.0                               # the anatomy carries the imbalance
    found = mirror_balance(*_linear(np.ones(SHAPE)), lopsided, np.zeros(SHAPE))
    assert found["ratio"] == pytest.approx(3.0) and found["ratio_mirrored"] == pytest.approx(1 / 3)
    assert (found["network_ratio"], found["anatomy_ratio"]) == pytest.approx((1.0, 3.0))
    assert found["prediction_change"] == pytest.approx(0.0, abs=1e-9)


def test_a_training_run_is_checked_from_the_command_line(train_run, capsys):
    main(["--train-dir", str(train_run["run"]), "--subjects", "all"])
    found = json.loads(capsys.readouterr().out)
    assert found["n_subjects"] == len(train_run["prep"].table)
    assert found["method"] == "dtd_reference" and found["ratio"] > 0 and found["ratio_mirrored"] > 0
    with pytest.raises(SystemExit, match="method gradient has no reference image"):
        main(["--train-dir", str(train_run["run"]), "--method", "gradient"])

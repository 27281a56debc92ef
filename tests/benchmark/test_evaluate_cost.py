"""Evaluate's perturbation cost beside the forward passes it needs."""
from types import SimpleNamespace

import numpy as np

from brainage.benchmark.evaluate_cost import (
    evaluate_cost_entries,
    main,
    measure_evaluate_cost,
    perturbation_settings,
)


def test_settings_come_from_the_evaluate_config():
    p = perturbation_settings()
    assert (p.patch, p.steps, p.patches_per_step, p.baseline) == (8, 10, 16, "mean")
    assert perturbation_settings(steps=3, batch_size=5).steps == 3


def test_cost_and_overhead_on_a_tiny_network(rng):
    import keras

    from brainage.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model((9, 10, 11, 1), widths=(2,), dense_units=4)
    x = rng.uniform(0, 1, (3, 9, 10, 11, 1)).astype(np.float32)
    p = perturbation_settings(patch=2, steps=4, patches_per_step=2, batch_size=4)
    cost = measure_evaluate_cost(model, x, p)
    assert cost["perturbation_forward_passes"] == 5 and cost["perturbation_batch"] == 4
    assert cost["perturbation_s_per_map"] > 0 and cost["perturbation_forward_ms"] > 0
    expected = cost["perturbation_s_per_map"] / (5 * cost["perturbation_forward_ms"] / 1000)
    assert np.isclose(cost["perturbation_overhead"], expected)
    assert cost["perturbation_inline_overhead"] >= 1.0  # forward calls are part of the total


def test_bench_row_measure_uses_the_evaluate_settings(rng):
    import keras

    from brainage.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model((48, 48, 40, 1), widths=(2,), dense_units=4)  # 180 patches of 8³ (10 steps x 16 = 160 of them)
    setup = SimpleNamespace(model=model, settings=SimpleNamespace(repeats=1, seed=0))
    row = evaluate_cost_entries(setup, rng.uniform(0, 1, (1, 48, 48, 40, 1)).astype(np.float32))
    assert row["perturbation_forward_passes"] == 11 and row["perturbation_batch"] == 11
    assert np.isfinite(row["perturbation_overhead"])


def test_command_line_prints_the_measure(capsys):
    result = main(["--subjects", "1", "--steps", "2", "--shape", "30", "31", "29",
                   "--widths", "2"])
    assert '"perturbation_overhead"' in capsys.readouterr().out
    assert result["perturbation_forward_passes"] == 3

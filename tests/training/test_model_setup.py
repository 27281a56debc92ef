"""Dtype policy and learning-rate schedule of the network to fit."""
import pytest

from brainage.training.model_setup import dtype_policy, learning_rate
from brainage.training.settings import TrainSettings
from tests.builders import compose_train


@pytest.mark.parametrize("mixed, devices, expected", [
    (True, ["/device:CPU:0", "/device:GPU:0"], "mixed_float16"),  # TensorFlow names
    (True, ["gpu:0 (NVIDIA H100 80GB HBM3)"], "mixed_float16"),   # JAX names
    (True, ["/device:CPU:0"], "float32"),                          # float16 needs a GPU
    (True, ["cpu:0 (cpu)"], "float32"),
    (False, ["gpu:0 (NVIDIA H100 80GB HBM3)"], "float32"),
])
def test_mixed_precision_only_on_a_gpu(mixed, devices, expected):
    assert dtype_policy(mixed, devices) == expected


def test_learning_rate_schedules():
    constant = TrainSettings.from_cfg(compose_train("trainer.learning_rate=0.01"))
    assert learning_rate(constant, n_train=36) == 0.01
    plateau = TrainSettings.from_cfg(compose_train("trainer.lr_schedule=plateau"))
    assert learning_rate(plateau, n_train=36) == plateau.learning_rate
    cosine = TrainSettings.from_cfg(compose_train(
        "trainer.lr_schedule=cosine", "trainer.epochs=3", "trainer.learning_rate=0.01",
        "trainer.min_lr=0.001"))
    schedule = learning_rate(cosine, n_train=36)  # batch 4: 9 steps per epoch
    assert schedule.decay_steps == 27
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(27)) == pytest.approx(0.001)

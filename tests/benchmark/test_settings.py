"""The bench config read into BenchSettings: today's defaults, the README's overrides, bad values."""
import os

import pytest

from brainage.benchmark.settings import BenchSettings
from brainage.errors import BrainageError
from tests.builders import compose_stage


def settings(*overrides) -> BenchSettings:
    return BenchSettings.from_cfg(compose_stage("bench", *overrides))


def test_defaults_are_the_former_command_line_defaults():
    s = settings()
    assert s.batch_sizes == (1, 8) and s.repeats == 3 and s.device == "cpu" and s.backend is None
    assert s.jit_compile is False and s.methods is None and s.ig_steps == 8
    assert s.shape == (100, 124, 104) and s.seed == 0 and s.train is True
    assert s.mixed_precision is False
    assert s.model_path is None and s.peer is None and s.peer_tolerance == 1e-4
    assert s.threads == len(os.sched_getaffinity(0))  # null: every CPU this process may use
    # the seed network, as build_model's defaults had it
    assert s.model["widths"] == [8, 16, 32, 64] and s.model["dense_units"] == 32
    assert s.model["kernel_size"] == 3 and s.model["pool_size"] == 2


@pytest.mark.parametrize("overrides, expected", [
    (["batch_sizes=[1,8]", "repeats=3", "device=cpu"], {"batch_sizes": (1, 8), "repeats": 3}),
    (["backend=jax", "device=gpu", "batch_sizes=[1,8,32]"],
     {"backend": "jax", "device": "gpu", "batch_sizes": (1, 8, 32)}),
    (["methods=[dtd,gradient]"], {"methods": ("dtd", "gradient")}),
    (["mixed_precision=true"], {"mixed_precision": True}),
    (["shape=[20,22,19]", "model.widths=[2,4]"], {"shape": (20, 22, 19)}),
    (["peer=zennit", "batch_sizes=[1,2,8]"], {"peer": "zennit", "batch_sizes": (1, 2, 8)}),
    (["threads=1", "peer_tolerance=1e-5"], {"threads": 1, "peer_tolerance": 1e-5}),
])
def test_readme_overrides_reach_the_settings(overrides, expected):
    s = settings(*overrides)
    assert {key: getattr(s, key) for key in expected} == expected


@pytest.mark.parametrize("override, named", [
    ("repeats=0", "repeats"),
    ("device=tpu", "device"),
    ("backend=torch", "backend"),
    ("shape=[20,22]", "shape"),
    ("batch_sizes=[]", "batch_sizes"),
    ("batch_sizes=[1,0]", "batch_sizes"),
    ("batch_sizes=8", "batch_sizes"),
    ("methods=dtd", "methods"),
    ("train=maybe", "train"),
    ("ig_steps=0", "ig_steps"),
    ("peer=captum", "peer"),
    ("threads=0", "threads"),
    ("peer_tolerance=0", "peer_tolerance"),
    ("model_path=/nonexistent/model.keras", "model_path"),
])
def test_bad_values_raise_one_line_naming_the_key(override, named):
    with pytest.raises(BrainageError, match=rf"^bench: {named} must") as info:
        settings(override)
    assert "\n" not in str(info.value)


def test_settings_are_frozen():
    s = settings()
    with pytest.raises(AttributeError):
        s.repeats = 5


def test_model_path_reaches_the_settings(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"")
    assert settings(f"model_path={path}").model_path == path


@pytest.mark.parametrize("overrides, message", [
    (["peer=zennit", "device=gpu"], "peer=zennit compares both libraries on the CPU"),
    (["mixed_precision=true", "model_path={model}"], "mixed_precision builds the model group's network"),
])
def test_combinations_that_cannot_run_are_refused(overrides, message, tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    overrides = [o.format(model=tmp_path / "model.keras") for o in overrides]
    with pytest.raises(BrainageError, match=message):
        settings(*overrides)

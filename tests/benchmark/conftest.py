"""Fixtures of the benchmark tests: the process environment restored after each test."""
import os

import pytest

# What brainage.benchmark.environment.configure_environment may change.
ENVIRONMENT = ("KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "JAX_PLATFORMS", "TF_CPP_MIN_LOG_LEVEL",
               "TF_NUM_INTRAOP_THREADS")


@pytest.fixture
def restored_environment(monkeypatch):
    """Register the benchmark's environment variables with monkeypatch, so that whatever a test
    (or the code it calls) sets is undone afterwards: later subprocesses must not inherit it."""
    for name in ENVIRONMENT:
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def peer_extra():
    """``peer_extra(module)`` imports a module of the ``peer`` extra, or skips the test without it.

    The ``test`` extra installs the ``peer`` extra, so under CI (``CI`` set, a fresh install of
    ``.[test]``) a missing module is an error, not a skip: CI always runs the peer tests. Import
    only torch in the test process: zennit must come before TensorFlow (see
    ``brainage.benchmark.zennit_peer.import_zennit``), so tests run it in a fresh process.
    """
    import importlib
    import importlib.util

    def import_peer_extra(module: str):
        if os.environ.get("CI") or importlib.util.find_spec(module) is not None:
            return importlib.import_module(module) if module != "zennit" else None
        pytest.skip(f"{module} comes with the peer extra: pip install -e '.[peer]'")

    return import_peer_extra

"""Fixtures of the benchmark tests: the process environment restored after each test."""
import os

import pytest

# What brainage.benchmark.environment.configure_environment may change.
ENVIRONMENT = ("KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "JAX_PLATFORMS", "TF_CPP_MIN_LOG_LEVEL")


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

"""Shared fixtures: a seeded rng, figures closed after every test, and one tiny trained run.

Builders (tiny cohorts, composed configs) live in ``tests/builders.py``; test modules never import
each other.
"""
import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def train_run(tmp_path_factory):
    """A tiny cohort, a one-block model fitted briefly and its run directory, built once per
    test session (per xdist worker). Tests must not change it; copy what they alter."""
    from tests.builders import build_train_run

    return build_train_run(tmp_path_factory.mktemp("train_run"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``needs_jax`` skip, saying why, where JAX is not installed (a runtime-only
    install). ``make test`` installs it, and under CI (``CI`` set) a missing JAX is a failure,
    not a skip: CI runs every test."""
    import importlib.util

    if os.environ.get("CI") or importlib.util.find_spec("jax") is not None:
        return
    skip = pytest.mark.skip(reason="needs JAX, which comes with the test extras: "
                                   "pip install -e '.[jax]' (make test installs it)")
    for item in items:
        if "needs_jax" in item.keywords:
            item.add_marker(skip)

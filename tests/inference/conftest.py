"""Fixtures of the inference tests: one tiny synthetic explain run, built once per session."""
import pytest


@pytest.fixture(scope="session")
def tiny_explain(tmp_path_factory):
    """A 7 × 8 × 9 explain run with a planted and a GM-driven effect (see synthetic_runs).
    Tests must not change it; copy what they alter."""
    from tests.inference.synthetic_runs import build_explain_run

    return build_explain_run(tmp_path_factory.mktemp("tiny_explain"))

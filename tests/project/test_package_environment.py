"""Importing brainage turns on TensorFlow's oneDNN kernels unless the user chose otherwise."""
import os
import subprocess
import sys

import pytest

PROBE = "import brainage, os; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("0", "0"), ("1", "1")])
def test_onednn_default_respects_the_environment(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == expected


def test_onednn_is_set_before_tensorflow_is_imported():
    probe = ("import sys, brainage; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

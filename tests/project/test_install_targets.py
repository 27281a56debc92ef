"""Each make target installs what its task needs: stages the runtime, tests the test extras, the
Zennit benchmark the peer extra (dry runs against an empty virtual environment)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def dry_run(tmp_path, *words) -> list:
    venv = tmp_path / "venv"
    return subprocess.run(["make", "-s", "-n", "-C", str(ROOT), f"VENV={venv}", *words],
                          capture_output=True, text=True, check=True).stdout.splitlines()


def installs(lines) -> list:
    return [line.split("-e ", 1)[1] for line in lines if "pip install" in line and "-e " in line]


@pytest.mark.parametrize("target", ["install", "train", "explain", "evaluate", "infer", "predict", "bench"])
def test_a_stage_installs_the_runtime_only(target, tmp_path):
    assert installs(dry_run(tmp_path, target)) == ["."]


@pytest.mark.parametrize("target", ["test", "test-fast"])
def test_the_tests_add_the_test_extras(target, tmp_path):
    assert installs(dry_run(tmp_path, target)) == [".", '".[test]"']


def test_preprocess_adds_the_preprocess_extra(tmp_path):
    lines = dry_run(tmp_path, "preprocess", "data.root=raw")
    assert installs(lines) == [".", '".[preprocess]"']
    assert lines[-1].endswith("-m brainage.preprocess 'data.root=raw'")


def test_the_zennit_benchmark_adds_the_peer_extra(tmp_path):
    lines = dry_run(tmp_path, "bench", "peer=zennit")
    assert installs(lines) == [".", '".[peer]"']
    assert lines[-1].endswith("-m brainage.bench 'peer=zennit'")

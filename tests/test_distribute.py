"""The distribute stage: input-pipeline throughput from the command line, new and earlier forms."""
import json
import os
import subprocess
import sys

import pytest

from brainage.distribute import distribute
from brainage.errors import DataError
from brainage.training.stream_measure import write_test_cache
from tests.builders import REPO, compose_stage


def _cli(tmp_path, *args, run="run"):
    # The reader threads need keras only for PyDataset: JAX starts in half TensorFlow's time.
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="jax")
    return subprocess.run([sys.executable, "-m", "brainage.distribute", *args,
                           f"hydra.run.dir={tmp_path / run}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_stage_measures_a_given_cache_and_writes_stream_json(tmp_path, capsys):
    cache = write_test_cache(tmp_path / "volumes.npy", 5, shape=(4, 5, 6))
    report = distribute(compose_stage("distribute", f"cache={cache}", "workers=[1,2]",
                                      "batch_size=2", "warm=true"), tmp_path)
    assert [r["workers"] for r in report["results"]] == [1, 2]
    assert all(r["volumes"] == 5 for r in report["results"])
    assert report["shape"] == [5, 4, 5, 6] and report["batch_size"] == 2
    assert json.loads((tmp_path / "stream.json").read_text()) == report
    assert json.loads(capsys.readouterr().out) == report
    with pytest.raises(DataError, match="no such file"):
        distribute(compose_stage("distribute", f"cache={tmp_path / 'none.npy'}"), tmp_path)


@pytest.mark.slow
@pytest.mark.needs_jax
def test_cli_takes_the_earlier_flags(tmp_path):
    """``python -m brainage.distribute N --workers 1 2 --batch-size 4`` as the README had it."""
    result = _cli(tmp_path, "6", "--workers", "1", "2", "--batch-size", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "stream.json").read_text())
    assert report["shape"] == [6, 100, 124, 104] and report["batch_size"] == 4
    assert [r["workers"] for r in report["results"]] == [1, 2]
    missing = _cli(tmp_path, f"cache={tmp_path / 'none.npy'}", run="run2")  # "run" is finished
    assert missing.returncode == 2 and missing.stderr.startswith("error: cache=")
    assert "Traceback" not in missing.stderr

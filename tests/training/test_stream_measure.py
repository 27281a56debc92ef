"""Measuring the streaming input pipeline: every volume read, memory bounded."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from brainage.errors import DataError
from brainage.training.stream_measure import (
    StreamSettings,
    measure_stream,
    stream_report,
    write_test_cache,
)
from tests.builders import REPO, compose_stage


def test_measure_stream_reads_every_volume(tmp_path):
    path = write_test_cache(tmp_path / "volumes.npy", 7, shape=(5, 6, 7))
    assert np.load(path, mmap_mode="r").shape == (7, 5, 6, 7)
    results = measure_stream(path, batch_size=3, workers=(1, 2))
    assert [r["workers"] for r in results] == [1, 2]
    assert all(r["volumes"] == 7 and r["volumes_per_s"] > 0 for r in results)
    report = stream_report(path, 4, (3,), cold=False)
    assert report["shape"] == [7, 5, 6, 7] and report["batch_size"] == 4
    assert [r["volumes"] for r in report["results"]] == [7]
    assert report["peak_mb"]["rss"] >= report["peak_mb"]["anon"] > 0


def test_stream_settings_come_from_the_config(tmp_path):
    settings = StreamSettings.from_cfg(compose_stage("distribute"))
    yaml = OmegaConf.load(REPO / "configs" / "distribute.yaml")
    assert settings.n_volumes == yaml.n_volumes and settings.batch_size == yaml.batch_size
    assert list(settings.workers) == list(yaml.workers) and settings.cache is None
    assert StreamSettings.from_cfg(compose_stage("distribute", "workers=2")).workers == (2,)
    with pytest.raises(DataError, match="no such file"):
        StreamSettings.from_cfg(compose_stage("distribute", f"cache={tmp_path / 'none.npy'}"))
    with pytest.raises(DataError, match="workers: expected positive numbers"):
        StreamSettings.from_cfg(compose_stage("distribute", "workers=[1,0]"))


STREAM_SCRIPT = textwrap.dedent("""
    import json, sys
    from brainage.training.stream_measure import measure_stream, memory_status, peak_memory
    before = memory_status()
    with peak_memory() as peaks:
        results = measure_stream(sys.argv[1], batch_size=2, workers=(1, 2, 4))
    print("RESULT " + json.dumps({"before": before, "peaks": peaks, "results": results}))
""")


@pytest.mark.slow
@pytest.mark.needs_jax
def test_a_cache_larger_than_the_memory_bound_streams(tmp_path):
    """615 MB of float16 volumes read three times over while private memory stays under 400 MB.

    Private (anonymous) memory is what a process needs; the cache's pages that it maps count in
    its RSS too, but they are page cache, which the kernel drops and re-reads under pressure.
    """
    path = Path(write_test_cache(tmp_path / "volumes.npy", 250))
    try:
        cache_mb = path.stat().st_size / 2**20
        assert cache_mb > 600
        # The allocator returns freed batch buffers to the system at once, so RssAnon measures the
        # data alive, not blocks glibc keeps for reuse.
        env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3",
                   KERAS_BACKEND="jax", MALLOC_MMAP_THRESHOLD_="1048576")
        proc = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, str(path)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, proc.stderr[-3000:]
        result = json.loads(lines[-1][len("RESULT "):])
    finally:
        path.unlink(missing_ok=True)
    assert [r["volumes"] for r in result["results"]] == [250, 250, 250]
    assert result["peaks"]["anon"] < 400 < cache_mb, result
    print(json.dumps(result))

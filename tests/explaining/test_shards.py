"""Explanations in shards (brainage.explaining.shards, .merge): each a deterministic part, merged
into exactly the single job."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from brainage.errors import ExplainError
from brainage.explain import explain
from brainage.explaining.settings import parse_shard
from brainage.explaining.shards import shard_batches
from tests.builders import REPO, assert_same_table, compose_explain

EXPLAIN = ["explainer=[dtd,gradient_x_input]", "subjects=all", "targets=[predicted,all]",
           "group.correct_only=false"]
TABLES = ["conservation.csv", "subjects.csv", "regions/custom_subjects.csv",
          "regions/custom_summary.csv"]


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", **extra)


def assert_same_explain_run(a: Path, b: Path, exact_rows=True):
    """Equal tables (up to row order unless ``exact_rows``) and numerically equal maps."""
    for name in TABLES:
        left = pd.read_csv(a / name, dtype={"subject_id": str})
        right = pd.read_csv(b / name, dtype={"subject_id": str})
        assert list(left.columns) == list(right.columns), name
        if not exact_rows:
            keys = [c for c in left.columns if left[c].dtype == object] + ["bin"] * ("bin" in left)
            left = left.sort_values(keys).reset_index(drop=True)
            right = right.sort_values(keys).reset_index(drop=True)
        assert_same_table(left, right, name)
    groups = sorted(p.name for p in (a / "group").glob("*_mean.nii.gz"))
    assert groups and groups == sorted(p.name for p in (b / "group").glob("*_mean.nii.gz"))
    for name in groups:
        # Another process may round a map's last bit otherwise; where a signed group mean cancels
        # (1e-8 of terms around 1e-6), that bit is 2e-6 of the mean. Held to 1e-6 of the map's
        # largest value as well as rtol 1e-6.
        expected = nib.load(a / "group" / name).get_fdata()
        np.testing.assert_allclose(nib.load(b / "group" / name).get_fdata(), expected, rtol=1e-6,
                                   atol=1e-6 * np.abs(expected).max(), err_msg=name)
    maps = sorted(p.name for p in (a / "maps").iterdir())
    assert maps == sorted(p.name for p in (b / "maps").iterdir())
    for name in maps[:4]:
        np.testing.assert_array_equal(nib.load(b / "maps" / name).get_fdata(),
                                      nib.load(a / "maps" / name).get_fdata())
    assert (b / "report.html").is_file() and (b / "explain.json").is_file()


# --------------------------------------------------------------------------- explain shards

@pytest.fixture(scope="module")
def single_job(train_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    explain(compose_explain(train_run, *EXPLAIN), out)
    return out


@pytest.fixture(scope="module")
def shards(train_run, tmp_path_factory):
    """Three shards of the single job's work, in a multirun-like directory 0/ 1/ 2/."""
    sweep = tmp_path_factory.mktemp("sweep")
    for i in range(3):
        explain(compose_explain(train_run, *EXPLAIN, f"shard={i}/3"), sweep / str(i))
    return sweep


def copy_shards(shards, dest: Path) -> Path:
    shutil.copytree(shards, dest)
    return dest


def test_parse_shard():
    assert parse_shard(None) is None and parse_shard("") is None
    assert parse_shard("0/1") == (0, 1) and parse_shard(" 3/4 ") == (3, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(ExplainError, match="expected i/n with 0 <= i < n"):
            parse_shard(bad)


@pytest.mark.parametrize("n_batches, n", [(6, 3), (7, 3), (5, 1), (2, 2)])
def test_shards_partition_the_batches(n_batches, n):
    parts = [shard_batches(n_batches, (i, n)) for i in range(n)]
    assert sorted(b for p in parts for b in p) == list(range(n_batches))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.slow
def test_a_shard_holds_its_part_and_no_report(shards, train_run):
    info = [json.loads((shards / str(i) / "shard.json").read_text()) for i in range(3)]
    assert [s["shard"] for s in info] == ["0/3", "1/3", "2/3"]
    assert [s["batches"] for s in info] == [[0, 3], [1, 4], [2, 5]]
    ids = [sid for s in info for sid in s["subject_ids"]]
    assert sorted(ids) == sorted(train_run["prep"].table["subject_id"]) and len(set(ids)) == len(ids)
    assert len({s["config_hash"] for s in info}) == 1
    one = shards / "0"
    for name in ("group_sums.npz", "subjects.csv", "conservation.csv", "regions.csv",
                 "config.yaml"):
        assert (one / "shard" / name).is_file(), name
    assert not (one / "report.html").exists() and not (one / "group").exists()
    assert len(list((one / "maps").iterdir())) == len(info[0]["subject_ids"]) * 2 * 4


@pytest.mark.slow
def test_merged_shards_equal_the_single_job(single_job, shards, train_run, tmp_path):
    out = tmp_path / "merged"
    summary = explain(compose_explain(train_run, f"merge={shards}", "figures.subjects=1"), out)
    assert summary["shards"] == [str(shards / str(i)) for i in range(3)]
    assert_same_explain_run(single_job, out)
    single = json.loads((single_job / "explain.json").read_text())
    for key in ("n_subjects", "n_maps", "group_counts", "max_rel_error", "methods", "targets"):
        assert summary[key] == single[key], key
    html = (out / "report.html").read_text()
    assert all(p.relative_to(out).as_posix() in html for p in (out / "figures").glob("*.png"))


@pytest.mark.slow
def test_merge_takes_a_list_of_shard_directories(single_job, shards, train_run, tmp_path):
    dirs = ",".join(str(shards / str(i)) for i in (2, 0, 1))
    explain(compose_explain(train_run, f"merge=[{dirs}]"), tmp_path / "merged")
    assert_same_explain_run(single_job, tmp_path / "merged")


@pytest.mark.slow
def test_a_crashed_shard_is_named_and_can_be_rerun_alone(single_job, shards, train_run, tmp_path):
    sweep = copy_shards(shards, tmp_path / "sweep")
    crashed = sweep / "1"
    shutil.rmtree(crashed)
    (crashed / ".hydra").mkdir(parents=True)  # what Hydra leaves of a job that died
    OmegaConf.save(compose_explain(train_run, *EXPLAIN, "shard=1/3"), crashed / ".hydra" / "config.yaml")
    (crashed / ".hydra" / "overrides.yaml").write_text("- shard=1/3\n- subjects=all\n")
    (crashed / ".incomplete" / "maps").mkdir(parents=True)
    with pytest.raises(ExplainError) as err:
        explain(compose_explain(train_run, f"merge={sweep}"), tmp_path / "merged")
    message = str(err.value)
    assert "1 of 3 shards missing or incomplete" in message
    assert f"shard 1/3: {crashed} did not finish (no shard.json); rerun it alone" in message
    assert f"python -m brainage.explain shard=1/3 subjects=all hydra.run.dir={crashed}" in message
    assert not (tmp_path / "merged" / "report.html").exists()

    explain(compose_explain(train_run, *EXPLAIN, "shard=1/3"), crashed)  # the rerun, alone
    explain(compose_explain(train_run, f"merge={sweep}"), tmp_path / "merged")
    assert_same_explain_run(single_job, tmp_path / "merged")


@pytest.mark.slow
def test_merge_refuses_a_missing_shard(shards, train_run, tmp_path):
    dirs = f"[{shards / '0'},{shards / '2'}]"
    with pytest.raises(ExplainError, match=r"shard 1/3: not found; run it with shard=1/3"):
        explain(compose_explain(train_run, f"merge={dirs}"), tmp_path / "merged")


@pytest.mark.slow
def test_merge_refuses_mismatched_shards(shards, train_run, tmp_path):
    other = tmp_path / "other"
    explain(compose_explain(train_run, *EXPLAIN[:-1], "shard=1/3"), other)  # correct_only differs
    dirs = f"[{shards / '0'},{other},{shards / '2'}]"
    with pytest.raises(ExplainError, match=r"does not belong with .*: config_hash"):
        explain(compose_explain(train_run, f"merge={dirs}"), tmp_path / "merged")
    twice = f"[{shards / '0'},{shards / '1'},{shards / '1'},{shards / '2'}]"
    with pytest.raises(ExplainError, match="shard 1/3 is there twice"):
        explain(compose_explain(train_run, f"merge={twice}"), tmp_path / "merged")
    assert not (tmp_path / "merged" / "explain.json").exists()


@pytest.mark.slow
def test_merge_refuses_shards_of_another_model(shards, train_run, tmp_path):
    sweep = copy_shards(shards, tmp_path / "sweep")
    info = json.loads((sweep / "2" / "shard.json").read_text())
    info["model_sha256"] = "0" * 64
    (sweep / "2" / "shard.json").write_text(json.dumps(info))
    with pytest.raises(ExplainError, match="model_sha256"):
        explain(compose_explain(train_run, f"merge={sweep}"), tmp_path / "merged")


def test_shard_errors(train_run, tmp_path):
    with pytest.raises(ExplainError, match=r"shard=5/6 has no subjects: .* make 2 batches"):
        explain(compose_explain(train_run, "shard=5/6"), tmp_path / "a")
    with pytest.raises(ExplainError, match="exclude each other"):
        explain(compose_explain(train_run, "shard=0/2", f"merge={tmp_path}"), tmp_path / "b")
    with pytest.raises(ExplainError, match="holds no explain shard"):
        explain(compose_explain(train_run, f"merge={tmp_path}"), tmp_path / "c")
    with pytest.raises(ExplainError, match="is not a directory"):
        explain(compose_explain(train_run, f"merge={tmp_path / 'missing'}"), tmp_path / "d")



@pytest.mark.slow
def test_a_two_shard_multirun_on_submitit_local_merges_to_the_single_job(train_run, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    common = [f"train_dir={train_run['run']}", "atlas=custom", f"atlas.path={train_run['atlas']}",
              f"atlas.labels={train_run['labels']}", "progress=false", "figures.subjects=1", *EXPLAIN]
    sweep = tmp_path / "multirun"
    run = subprocess.run([sys.executable, "-m", "brainage.explain", "-m",
                          "hydra/launcher=submitit_local", "shard=0/2,1/2", *common,
                          f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert sorted(json.loads((sweep / n / "shard.json").read_text())["shard"]
                  for n in ("0", "1")) == ["0/2", "1/2"]
    assert (sweep / ".submitit").is_dir()
    merged = tmp_path / "merged"
    run = subprocess.run([sys.executable, "-m", "brainage.explain", f"merge={sweep}",
                          "figures.subjects=1", f"hydra.run.dir={merged}"], cwd=tmp_path,
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"{merged}/report.html" in run.stdout
    # The single job from the command line too: a pytest worker may hold another thread layout
    # (set by an earlier test in the same process), and oneDNN then rounds maps' last bits
    # otherwise. Like against like, the maps are equal bit for bit.
    single = tmp_path / "single"
    run = subprocess.run([sys.executable, "-m", "brainage.explain", *common,
                          f"hydra.run.dir={single}"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert_same_explain_run(single, merged)


def test_a_shard_config_saved_before_ensembles_still_reads():
    """Shards written before ``train_dirs`` and ``ensemble:`` existed still merge: their saved
    config lacks both keys, and a shard explains one run."""
    from omegaconf import OmegaConf, open_dict

    from brainage.explaining.settings import ExplainSettings
    from tests.builders import compose_stage

    cfg = compose_stage("explain")
    with open_dict(cfg):
        del cfg["train_dirs"], cfg["ensemble"]
    settings = ExplainSettings.from_cfg(OmegaConf.create(OmegaConf.to_container(cfg)))
    assert settings.train_dirs is None and settings.min_icc is None

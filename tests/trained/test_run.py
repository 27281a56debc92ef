"""The owner of a finished training run: which run, its files, its data config, cohort and subjects."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from brainage.errors import BrainageError, TrainedRunError
from brainage.runs import RunRecord
from brainage.trained import (
    TrainRunRequest,
    open_train_run,
    resolve_train_run,
    run_config,
    select_subjects,
)
from tests.builders import compose_explain


def _copy_run(train_run, tmp_path, name="2026-02-02_00-00-00"):
    run = tmp_path / "outputs" / "train" / name
    shutil.copytree(train_run["run"], run)
    return run


def test_request_reads_split_names_id_lists_and_comma_separated_ids(train_run):
    assert TrainRunRequest.from_cfg(compose_explain(train_run)).subjects == "test"
    listed = compose_explain(train_run, "subjects=[sub-01,sub-03]")
    assert TrainRunRequest.from_cfg(listed).subjects == ("sub-01", "sub-03")
    text = compose_explain(train_run, "subjects='sub-03, sub-01'")
    assert TrainRunRequest.from_cfg(text).subjects == ("sub-03", "sub-01")


def test_select_subjects_keeps_the_order_given():
    table = pd.DataFrame({"subject_id": ["a", "b", "c", "d"],
                          "split": ["train", "test", "val", "test"]})
    np.testing.assert_array_equal(select_subjects(table, "test"), [1, 3])
    np.testing.assert_array_equal(select_subjects(table, "all"), [0, 1, 2, 3])
    np.testing.assert_array_equal(select_subjects(table, ("d", "a")), [3, 0])
    with pytest.raises(TrainedRunError, match="subjects not in the training run's cohort: x"):
        select_subjects(table, ("a", "x"))
    with pytest.raises(TrainedRunError, match="selects no subject"):
        select_subjects(table.iloc[:1], "test")


def test_the_newest_finished_run_or_the_one_holding_model_path(train_run, tmp_path):
    outputs = train_run["run"].parents[1]
    newest = TrainRunRequest(None, None, outputs, {}, "test")
    assert resolve_train_run(newest).dir == train_run["run"]
    by_model = TrainRunRequest(None, train_run["run"] / "model.keras", tmp_path, {}, "test")
    assert resolve_train_run(by_model).dir == train_run["run"]
    by_dir = resolve_train_run(TrainRunRequest(train_run["run"], None, tmp_path, {}, "test"))
    assert by_dir.model_path == train_run["run"] / "model.keras"
    with pytest.raises(TrainedRunError, match="no finished train run with model.keras under"):
        resolve_train_run(TrainRunRequest(None, None, tmp_path, {}, "test"))
    missing = TrainRunRequest(None, tmp_path / "model.keras", tmp_path, {}, "test")
    with pytest.raises(TrainedRunError, match=r"model_path=.*model\.keras does not exist"):
        resolve_train_run(missing)


def test_an_unfinished_run_is_refused_and_the_newest_finished_one_taken(train_run, tmp_path):
    newer = _copy_run(train_run, tmp_path)  # newer than the finished one beside it
    older = _copy_run(train_run, tmp_path, "2026-01-01_00-00-00")
    RunRecord("train").end(newer, "failed", "out of memory")
    RunRecord("train").end(older, "finished")
    with pytest.raises(TrainedRunError, match=rf"train_dir={newer}: the training run {newer} did "
                                              r"not finish, its run.json says failed \(out of "
                                              r"memory\); pass a finished run"):
        resolve_train_run(TrainRunRequest(newer, None, tmp_path, {}, "test"))
    found = resolve_train_run(TrainRunRequest(None, None, tmp_path / "outputs", {}, "test"))
    assert found.dir == older and found.record().state == "finished"


def test_run_json_config_split_and_metrics_are_read(train_run, tmp_path):
    run = _copy_run(train_run, tmp_path)
    (run / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.5}}))
    train = resolve_train_run(TrainRunRequest(run, None, tmp_path, {}, "test"))
    assert train.record() is None  # made before run records: finished
    assert train.metrics() == {"test": {"accuracy": 0.5}}
    assert int(train.cfg.seed) == 0 and train.task == "classification" and train.n_classes == 3
    assert list(train.split["subject_id"]) == list(train_run["prep"].table["subject_id"])
    (run / "metrics.json").unlink()
    with pytest.raises(TrainedRunError, match="metrics.json is missing or unreadable"):
        train.metrics()
    (run / ".hydra" / "config.yaml").unlink()
    with pytest.raises(TrainedRunError, match="has no .hydra/config.yaml: cannot tell which data"):
        resolve_train_run(TrainRunRequest(run, None, tmp_path, {}, "test"))


def test_the_data_config_with_the_users_overrides(train_run, tmp_path):
    train = resolve_train_run(TrainRunRequest(train_run["run"], None, tmp_path, {}, "test"))
    moved = str(tmp_path / "moved")
    assert train.data_config({"root": moved}).root == moved
    assert train.data_config({}).root == train.cfg.data.root
    layered = run_config(train_run["run"], {"root": "a"}, {"root": moved})
    assert layered.data.root == moved and int(layered.seed) == 0
    assert train.cfg.data.root != moved  # the run's own config is left as it was
    with pytest.raises(TrainedRunError, match=r"data.rooot: not a key of the training run's data "
                                              r"config \(.*config.yaml\); check the spelling"):
        train.data_config({"rooot": moved})


def test_opened_run_rebuilds_the_cohort_with_its_split(train_run):
    request = TrainRunRequest(train_run["run"], None, train_run["tmp"], {}, ("sub-05", "sub-02"))
    opened = open_train_run(request, progress=False)
    assert opened.subject_ids() == ["sub-05", "sub-02"]
    assert list(opened.prep.table["split"]) == list(train_run["prep"].table["split"])
    assert opened.image_path(int(opened.rows[0])).endswith("sub-05_gm.nii.gz")


def test_a_cohort_that_no_longer_matches_the_split_is_refused(train_run, tmp_path):
    run = tmp_path / "train"
    (run / ".hydra").mkdir(parents=True)
    for name in ("model.keras", ".hydra/config.yaml"):
        (run / name).write_bytes((train_run["run"] / name).read_bytes())
    split = pd.read_csv(train_run["run"] / "split.csv", dtype={"subject_id": str})
    split["split"] = split["split"].iloc[::-1].to_numpy()  # another split of the same cohort
    split.to_csv(run / "split.csv", index=False)
    with pytest.raises(TrainedRunError, match="no longer reproduces .*split.csv"):
        open_train_run(TrainRunRequest(run, None, tmp_path, {}, "test"), progress=False)


def test_one_error_type_that_every_stage_prints_the_same_way(tmp_path, capsys):
    from omegaconf import OmegaConf

    from brainage.runs import run_stage

    assert issubclass(TrainedRunError, BrainageError)

    def stage(cfg, run_dir):
        raise TrainedRunError("train_dir=x does not exist")

    with pytest.raises(SystemExit) as exit_info:
        run_stage(stage, OmegaConf.create({}), run_dir=tmp_path)
    assert exit_info.value.code == 2
    assert "error: train_dir=x does not exist" in capsys.readouterr().err

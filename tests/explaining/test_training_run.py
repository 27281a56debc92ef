"""Access to a finished training run: which run, which subjects, its cohort and its model."""
import numpy as np
import pandas as pd
import pytest

from brainage.errors import ExplainError
from brainage.explaining.training_run import (
    TrainRunRequest,
    open_train_run,
    resolve_train_run,
    select_subjects,
)
from tests.builders import compose_explain


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
    with pytest.raises(ExplainError, match="subjects not in the training run's cohort: x"):
        select_subjects(table, ("a", "x"))
    with pytest.raises(ExplainError, match="selects no subject"):
        select_subjects(table.iloc[:1], "test")


def test_the_newest_finished_run_or_the_one_holding_model_path(train_run, tmp_path):
    outputs = train_run["run"].parents[1]
    newest = TrainRunRequest(None, None, outputs, {}, "test")
    assert resolve_train_run(newest).dir == train_run["run"]
    by_model = TrainRunRequest(None, train_run["run"] / "model.keras", tmp_path, {}, "test")
    assert resolve_train_run(by_model).dir == train_run["run"]
    with pytest.raises(ExplainError, match="no finished train run with model.keras under"):
        resolve_train_run(TrainRunRequest(None, None, tmp_path, {}, "test"))
    missing = TrainRunRequest(None, tmp_path / "model.keras", tmp_path, {}, "test")
    with pytest.raises(ExplainError, match=r"model_path=.*model\.keras does not exist"):
        resolve_train_run(missing)


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
    with pytest.raises(ExplainError, match="no longer reproduces .*split.csv"):
        open_train_run(TrainRunRequest(run, None, tmp_path, {}, "test"), progress=False)

"""Which method draws predict's maps, and who of a cohort was in the training run's split."""
import json

import numpy as np
import pandas as pd
import pytest

from brainage.errors import PredictError
from brainage.predicting.cohort import training_split_flags
from brainage.predicting.methods import choose_method, explain_default, method_params
from tests.builders import compose_stage


def _evaluate_run(outputs, name, train_dir, method):
    run = outputs / "evaluate" / name
    run.mkdir(parents=True)
    (run / "evaluate.json").write_text(json.dumps({"train_dir": str(train_dir),
                                                   "default_choice": {"method": method}}))
    return run


def test_the_newest_evaluate_run_of_the_model_chooses_the_method(tmp_path):
    outputs, train_dir = tmp_path / "outputs", tmp_path / "outputs" / "train" / "a"
    _evaluate_run(outputs, "2026-01-01_00-00-00", train_dir, "dtd_canonized")
    newest = _evaluate_run(outputs, "2026-01-02_00-00-00", train_dir, "dtd_w2")
    _evaluate_run(outputs, "2026-01-03_00-00-00", tmp_path / "another_run", "dtd")
    chosen = choose_method(None, train_dir, outputs)
    assert chosen.name == "dtd_w2" and str(newest) in chosen.chosen_by
    assert chosen.params == method_params("dtd_w2") and chosen.params["name"] == "dtd_w2"


def test_without_an_evaluate_run_make_explains_first_default_draws_them(tmp_path):
    first = next(iter(compose_stage("explain").explainer))
    assert explain_default() == first
    chosen = choose_method(None, tmp_path / "train", tmp_path / "outputs")
    assert chosen.name == first and "make explain's default" in chosen.chosen_by


def test_a_named_method_is_taken_and_an_unknown_one_refused(tmp_path):
    assert choose_method("deeplift", tmp_path, tmp_path).params["name"] == "deeplift"
    with pytest.raises(PredictError, match=r"method=dtdd: no such explanation method; expected "
                                           r"one of .*\bdtd\b"):
        choose_method("dtdd", tmp_path, tmp_path)


def test_a_subject_is_the_training_runs_when_its_id_and_age_agree():
    split = pd.DataFrame({"subject_id": ["a", "b", "c", "d"], "age": [20.5, 30.0, 40.0, 50.0],
                          "split": ["train", "val", "test", "train"]})
    cohort = pd.DataFrame({"subject_id": ["a", "b", "c", "x"],
                           "age": [20.5, np.nan, 44.0, 50.0]})
    # b: no age here, its id decides; c: another person of the same id; x: not in the split
    assert list(training_split_flags(cohort, split)) == ["train", "val", "", ""]

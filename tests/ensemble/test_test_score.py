"""An ensemble's own test score from its members' test_predictions.csv, worked out by hand; none
where a member has no table or the members were tested on different subjects."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from brainage.ensemble.members import Ensemble, Member
from brainage.ensemble.test_score import ensemble_test_metrics


def _ensemble(dirs, task="classification") -> Ensemble:
    return Ensemble(tuple(Member(SimpleNamespace(dir=d, task=task,
                                                 is_regression=task == "regression"), None, None)
                          for d in dirs))


def _classifier(folder, ids, bins, probabilities):
    folder.mkdir()
    logits = np.log(np.asarray(probabilities))
    pd.DataFrame({"subject_id": ids, "bin": bins,
                  **{f"logit_{k}": logits[:, k] for k in range(logits.shape[1])}}).to_csv(
        folder / "test_predictions.csv", index=False)
    return folder


def test_a_classifier_ensemble_is_scored_on_its_mean_probabilities(tmp_path):
    ids, bins = ["a", "b", "c", "d"], [0, 0, 1, 1]
    # a: both say 0; b: 0.55 vs 0.01 for bin 0, so the mean says 1; c, d: both say 1, 0
    first = _classifier(tmp_path / "A", ids, bins,
                        [[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.6, 0.4]])
    second = _classifier(tmp_path / "B", ids[::-1], bins[::-1],  # rows matched by subject
                         [[0.7, 0.3], [0.1, 0.9], [0.01, 0.99], [0.8, 0.2]])
    metrics, note = ensemble_test_metrics(_ensemble([first, second]))
    # predicted: a 0 ✓, b 1 ✗, c 1 ✓, d 0 ✗ → 2/4; recall bin 0: 1/2, bin 1: 1/2
    assert note is None
    assert metrics == {"task": "classification", "test_accuracy": 0.5,
                       "test_balanced_accuracy": 0.5, "test_n": 4}


def test_a_regressor_ensemble_is_scored_on_its_mean_age(tmp_path):
    dirs = []
    for name, predicted in (("A", [30.0, 50.0, 70.0]), ("B", [34.0, 54.0, 62.0])):
        (tmp_path / name).mkdir()
        pd.DataFrame({"subject_id": ["a", "b", "c"], "age": [30.0, 50.0, 70.0],
                      "predicted_age": predicted}).to_csv(tmp_path / name / "test_predictions.csv",
                                                          index=False)
        dirs.append(tmp_path / name)
    metrics, note = ensemble_test_metrics(_ensemble(dirs, "regression"))
    # mean ages 32, 52, 66: errors 2, 2, 4
    assert note is None and metrics["mae"] == pytest.approx(8 / 3) and metrics["test_n"] == 3
    assert metrics["r2"] == pytest.approx(1 - 24 / 800)


def test_no_score_without_every_table_or_a_shared_test_split(tmp_path):
    first = _classifier(tmp_path / "A", ["a", "b"], [0, 1], [[0.9, 0.1], [0.2, 0.8]])
    other = _classifier(tmp_path / "B", ["a", "c"], [0, 1], [[0.9, 0.1], [0.2, 0.8]])
    (tmp_path / "C").mkdir()
    metrics, note = ensemble_test_metrics(_ensemble([first, other]))
    assert metrics == {"task": "classification"} and "different subjects" in note
    metrics, note = ensemble_test_metrics(_ensemble([first, tmp_path / "C"]))
    assert metrics == {"task": "classification"} and f"no test_predictions.csv in {tmp_path / 'C'}" == note

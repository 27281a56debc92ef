"""The one reader of a training run's stored bias correction (``metrics.json``'s
``age_gap.correction``), and how the explain and infer stages report a bad file."""
import json

import numpy as np
import pytest

from brainage.data.age_gap import AgeBiasCorrection, read_correction
from brainage.errors import DataError, ExplainError, InferError
from brainage.explaining.age_groups import gap_correction
from brainage.inference.predictions import correction_or_nan, stored_correction

FITTED = AgeBiasCorrection.fit([20, 40, 60, 80], [31, 39, 52, 58])


def _write(tmp_path, payload):
    (tmp_path / "metrics.json").write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return tmp_path


def test_a_stored_correction_reads_back_as_fitted(tmp_path):
    stored = read_correction(_write(tmp_path, {"age_gap": {"correction": FITTED.as_dict()}}))
    assert stored.correction == FITTED and stored.problem is None
    assert stored.summary() == {"from": str(tmp_path / "metrics.json"), "fitted_on": "val",
                                "correction": FITTED.as_dict(), "problem": None}


def test_a_run_that_fitted_none_says_why(tmp_path):
    stored = read_correction(_write(tmp_path, {"age_gap": {"correction": None, "problem": "slope -0.2"}}))
    assert stored.correction is None and stored.problem == "slope -0.2"
    assert np.isnan(correction_or_nan(stored).corrected_gap([30.0], [40.0])).all()


@pytest.mark.parametrize(("payload", "message"), [
    ("[1, 2]", "is not a metrics.json object"),
    ("{not json", "is not a metrics.json object"),
    ({"task": "regression"}, "has no age_gap.correction"),
    ({"age_gap": {"correction": {"gap_slope": 1.0}}},
     "age_gap.correction lacks gap_intercept, prediction_slope, prediction_intercept, n"),
    ({"age_gap": {"correction": {**FITTED.as_dict(), "gap_slope": "0.1", "n": True}}},
     "age_gap.correction's gap_slope, n are not a number"),
])
def test_a_malformed_file_is_a_clear_error_in_every_stage(tmp_path, payload, message):
    train_dir = _write(tmp_path, payload)
    with pytest.raises(DataError, match=message) as raised:
        read_correction(train_dir)
    assert str(tmp_path / "metrics.json") in str(raised.value)
    with pytest.raises(InferError, match=message):
        stored_correction(train_dir)
    with pytest.raises(ExplainError, match=message):
        gap_correction(train_dir)


def test_a_missing_file_is_an_error_to_infer_and_uncorrected_groups_to_explain(tmp_path):
    with pytest.raises(InferError, match="metrics.json is missing: a regression run's predictions need"):
        stored_correction(tmp_path)
    assert gap_correction(tmp_path) is None
    assert gap_correction(_write(tmp_path, {"age_gap": {"correction": FITTED.as_dict()}})) == FITTED

"""Subjects without an age: training leaves them out and lists them, whatever on_bad_subject says;
make predict, on the run training wrote (with its grid.json), predicts them."""
import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from brainage.train import train
from brainage.trained.grid import GRID_FILE, read_trained_grid
from tests.builders import AFFINE, TRAIN_SOURCE, cohort_overrides, compose_train, write_cohort


@pytest.mark.slow
def test_training_leaves_out_an_ageless_subject_and_predict_keeps_it(tmp_path, caplog,
                                                                      predict_cli):
    root = write_cohort(tmp_path / "cohort")
    table = pd.read_csv(root / "participants.tsv", sep="\t", dtype=str, keep_default_na=False)
    table.loc[table["participant_id"] == "sub-005", "age"] = ""
    table.to_csv(root / "participants.tsv", sep="\t", index=False)
    run = tmp_path / "outputs" / "train" / "tiny"
    cfg = compose_train(*cohort_overrides(root, tmp_path / "cache"), "trainer.epochs=1",
                        "data.balance=none")
    assert cfg.data.on_bad_subject == "fail"
    with caplog.at_level(logging.WARNING):
        train(cfg, run_dir=run)
    excluded = pd.read_csv(run / "exclusions.csv")
    assert list(excluded["subject_id"]) == ["sub-005"]
    assert "sub-005: missing age in" in excluded["reason"][0]
    assert "sub-005: missing age in" in caplog.text
    split = pd.read_csv(run / "split.csv", dtype={"subject_id": str})
    assert "sub-005" not in set(split["subject_id"]) and len(split) == 23
    grid = read_trained_grid(run)
    assert (grid.format, grid.modulated, grid.grid.source_shape) == ("nifti", None, TRAIN_SOURCE)
    np.testing.assert_allclose(grid.grid.affine, AFFINE)
    assert json.loads((run / GRID_FILE).read_text())["voxel_size_mm"] == [2.0, 2.502, 3.0]

    # train() itself leaves the resolved config to its command line (run_stage): as it would
    (run / ".hydra").mkdir()
    shutil.copy(run / "checkpoint" / "config.yaml", run / ".hydra" / "config.yaml")
    status, out, err = predict_cli(tmp_path / "predict", f"train_dir={run}", "maps=false")
    assert status == 0, err
    predictions = pd.read_csv(tmp_path / "predict" / "predictions.csv",
                              dtype={"subject_id": str, "in_training_split": str}
                              ).fillna({"in_training_split": ""})
    assert len(predictions) == 24
    row = predictions.set_index("subject_id").loc["sub-005"]
    assert np.isnan(row["age"]) and row["in_training_split"] == ""
    assert 0 <= row["predicted_bin"] <= 2
    assert (predictions["in_training_split"] != "").sum() == 23
    assert "predicted 24 subjects" in out

"""make predict end to end on the tiny runs: whole cohorts with and without ages, maps, the gap
corrected by the run's own correction, refusals in one line that leave nothing behind."""
import json

import keras
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.runs import read_record
from brainage.trained.grid import GRID_FILE
from tests.builders import AFFINE, RUN_SHAPE

CLASSIFIER_COLUMNS = ["subject_id", "age", "bin", "predicted_bin", "predicted_range", "prob_bin0",
                      "prob_bin1", "prob_bin2", "correct", "in_training_split"]
REGRESSOR_COLUMNS = ["subject_id", "age", "predicted_age", "gap", "gap_corrected",
                     "predicted_age_corrected", "gap_prediction_corrected", "in_training_split"]


def _read(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "predictions.csv",
                       dtype={"subject_id": str, "in_training_split": str}
                       ).fillna({"in_training_split": ""})


def _model_outputs(run, volumes) -> np.ndarray:
    model = keras.saving.load_model(run / "model.keras", compile=False)
    return np.asarray(model(np.asarray(volumes, np.float32)[..., None]))


def _held_out_ids(n):
    return [f"new-{i:02d}" for i in range(n)]


@pytest.mark.slow
def test_a_classifier_predicts_its_whole_cohort_flags_its_split_and_maps_it(train_run, tmp_path,
                                                                             predict_cli):
    run_dir = tmp_path / "predict"
    status, out, err = predict_cli(run_dir, f"train_dir={train_run['run']}")
    assert status == 0, err
    table = _read(run_dir)
    assert list(table.columns) == CLASSIFIER_COLUMNS
    prep = train_run["prep"]
    assert sorted(table["subject_id"]) == sorted(prep.table["subject_id"])
    split = dict(zip(prep.table["subject_id"], prep.table["split"]))
    assert [split[s] for s in table["subject_id"]] == list(table["in_training_split"])
    logits = dict(zip(prep.table["subject_id"], _model_outputs(train_run["run"], prep.volumes)))
    assert [int(logits[s].argmax()) for s in table["subject_id"]] == list(table["predicted_bin"])
    np.testing.assert_allclose(table.filter(like="prob_bin").sum(axis=1), 1, rtol=1e-5)
    maps = sorted((run_dir / "maps").glob("*.nii.gz"))
    assert len(maps) == len(table)
    img = nib.load(maps[0])
    assert img.shape == RUN_SHAPE
    np.testing.assert_allclose(img.affine, AFFINE)
    summary = json.loads((run_dir / "predict.json").read_text())
    method = summary["maps"]["method"]
    assert maps[0].name.endswith(f"_{method}_predicted.nii.gz") and method in str(img.header["descrip"].astype(str))
    assert "make explain's default" in summary["maps"]["chosen_by"]
    assert (run_dir / "group" / f"{method}_mean.nii.gz").is_file()
    assert (run_dir / "report.html").is_file() and (run_dir / "figures" / "ages.png").is_file()
    assert summary["in_training_split"] == {"train": 12, "val": 6, "test": 6}
    assert summary["n_held_out"] == 0 and read_record(run_dir).state == "finished"
    assert out.strip().endswith(f"{run_dir}/predictions.csv") and "accuracy" in out


def test_subjects_without_an_age_are_predicted_and_a_new_cohort_is_held_out(train_run, tmp_path,
                                                                           predict_cli,
                                                                           other_cohort):
    prep = train_run["prep"]
    ids = list(prep.table.sort_values("subject_id")["subject_id"])
    ages = [f"{a:.1f}" for a in prep.table.set_index("subject_id").loc[ids, "age"]]
    ages[2], ages[13] = "", "n/a"
    cohort = other_cohort(train_run["tmp"] / "cohort", tmp_path / "held_out",
                          ids=_held_out_ids(len(ids)), ages=ages)
    run_dir = tmp_path / "predict"
    status, out, err = predict_cli(run_dir, f"train_dir={train_run['run']}",
                                   f"data.root={cohort}", f"data.cache.dir={tmp_path / 'cache'}",
                                   "maps=false")
    assert status == 0, err
    table = _read(run_dir)
    assert list(table["subject_id"]) == _held_out_ids(len(ids))
    assert table["age"].isna().sum() == 2 and table.loc[[2, 13], "age"].isna().all()
    assert table.loc[[2, 13], ["bin", "correct"]].isna().all().all()
    assert (table["in_training_split"] == "").all()
    logits = _model_outputs(train_run["run"], prep.volumes)
    order = np.argsort(prep.table["subject_id"].to_numpy())
    np.testing.assert_array_equal(table["predicted_bin"], logits[order].argmax(axis=1))
    assert not (run_dir / "maps").exists() and not (run_dir / "group").exists()
    summary = json.loads((run_dir / "predict.json").read_text())
    assert (summary["n_subjects"], summary["n_without_age"], summary["n_held_out"]) == (24, 2, 24)
    assert summary["accuracy"]["held_out"]["n"] == 22 and summary["maps"] is None


@pytest.mark.slow
def test_a_regressor_gives_the_gap_corrected_by_its_own_correction(regression_run, tmp_path,
                                                                   predict_cli, other_cohort):
    prep, correction = regression_run["prep"], regression_run["correction"]
    ids = list(prep.table.sort_values("subject_id")["subject_id"])
    ages = [f"{a:.1f}" for a in prep.table.set_index("subject_id").loc[ids, "age"]]
    ages[0] = ages[5] = ""
    ids[:12] = _held_out_ids(12)  # half another cohort's subjects, half the training run's
    cohort = other_cohort(regression_run["tmp"] / "cohort", tmp_path / "cohort", ids=ids, ages=ages)
    run_dir = tmp_path / "predict"
    status, out, err = predict_cli(run_dir, f"train_dir={regression_run['run']}",
                                   f"data.root={cohort}", f"data.cache.dir={tmp_path / 'cache'}")
    assert status == 0, err
    table = _read(run_dir)
    assert list(table.columns) == REGRESSOR_COLUMNS and len(table) == 24
    order = np.argsort(prep.table["subject_id"].to_numpy())
    predicted = _model_outputs(regression_run["run"], prep.volumes)[order, 0]
    np.testing.assert_allclose(table["predicted_age"], predicted, rtol=1e-5)
    known = table["age"].notna().to_numpy()
    assert list(np.flatnonzero(~known)) == [0, 5]
    np.testing.assert_allclose(table["gap"][known], (table["predicted_age"] - table["age"])[known])
    np.testing.assert_allclose(table["gap_corrected"][known],
                               correction.corrected_gap(table["age"][known], predicted[known]),
                               rtol=1e-5)
    assert table.loc[~known, ["gap", "gap_corrected"]].isna().all().all()
    np.testing.assert_allclose(table["predicted_age_corrected"],
                               correction.corrected_prediction(predicted), rtol=1e-5)
    split = dict(zip(prep.table["subject_id"], prep.table["split"]))
    assert list(table["in_training_split"]) == [""] * 12 + [split[s] for s in ids[12:]]
    summary = json.loads((run_dir / "predict.json").read_text())
    scores = summary["accuracy"]["all"]
    assert scores["n"] == 22
    assert scores["mae"] == pytest.approx(np.abs(table["gap"][known]).mean())
    assert summary["accuracy"]["held_out"]["n"] == 10
    assert summary["age_gap"]["correction"] == pytest.approx(correction.as_dict())
    assert len(list((run_dir / "maps").glob("*.nii.gz"))) == 24
    assert f"MAE {scores['mae']:.2f} y" in out


@pytest.mark.parametrize("change, message", [
    ({"shape": (10, 12, 13)}, r"images of shape \(10, 12, 13\), but the model of .* was trained "
                              r"on shape \(11, 12, 13\); resample the images to the training grid"),
    ({"affine": np.diag([2.5, 2.5, 3.0, 1.0])},
     r"voxels of 2\.5 x 2\.5 x 3 mm, but the model of .* was trained on voxels of 2 x 2\.502 x "
     r"3 mm"),
    ({"affine": AFFINE + np.array([[0, 0, 0, 4.0]] * 3 + [[0, 0, 0, 0]])},
     r"images with the affine \[\[-2\.0, 0\.1, 0\.0, 34\.0\].*, but the model .* was trained on "
     r"the affine \[\[-2\.0, 0\.1, 0\.0, 30\.0\]"),
])
def test_a_cohort_on_another_grid_is_refused_in_one_line(train_run, tmp_path, predict_cli,
                                                         other_cohort, change, message):
    import re

    cohort = other_cohort(train_run["tmp"] / "cohort", tmp_path / "other", **change)
    run_dir = tmp_path / "predict"
    status, out, err = predict_cli(run_dir, f"train_dir={train_run['run']}",
                                   f"data.root={cohort}", f"data.cache.dir={tmp_path / 'cache'}")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert re.search(rf"error: cohort {cohort}: {message}", errors[0]), errors[0]
    assert read_record(run_dir).state == "failed"
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "run.json"]


def test_a_cohort_preprocessed_otherwise_is_refused(train_run, tmp_path, predict_cli, copy_run):
    run = copy_run(train_run["run"], tmp_path / "train")
    (run / GRID_FILE).write_text(json.dumps({"format": "preprocessed", "modulated": True,
                                             "grid": train_run["prep"].grid.to_dict()}))
    status, _, err = predict_cli(tmp_path / "predict", f"train_dir={run}")
    assert status == 2, err
    assert (f"error: cohort {train_run['tmp'] / 'cohort'}: preprocessing nifti, but the model of "
            f"{run} was trained on preprocessed (modulated) data; preprocess the cohort as the "
            "training data were") in err


def test_a_used_run_directory_is_refused_and_left_as_it_was(train_run, tmp_path, predict_cli):
    run_dir = tmp_path / "predict"
    assert predict_cli(run_dir, f"train_dir={train_run['run']}", "maps=false")[0] == 0
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    status, _, err = predict_cli(run_dir, f"train_dir={train_run['run']}", "maps=false")
    assert status == 2 and "error: " in err and "already holds an earlier predict run" in err
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_a_bad_setting_is_refused_before_anything_loads(tmp_path, predict_cli, monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("the training run was opened before the settings were checked")

    monkeypatch.setattr("brainage.predicting.run.resolve_train_run", must_not_load)
    status, _, err = predict_cli(tmp_path / "predict", "batch_size=0")
    assert status == 2 and "error: batch_size=0; expected a number ≥ 1" in err


def test_a_missing_derivative_names_make_preprocess(train_run, tmp_path, predict_cli, copy_run):
    pytest.importorskip("brainage.data.formats.preprocessed")
    from omegaconf import OmegaConf

    from tests.builders import compose_data

    run = copy_run(train_run["run"], tmp_path / "train")
    data = compose_data("t1", f"root={tmp_path / 'trained_on'}", "source_shape=null",
                        f"derivatives_dir={tmp_path / 'derivatives'}")
    OmegaConf.save(OmegaConf.create({"seed": 0, "data": data}), run / ".hydra" / "config.yaml")
    (run / GRID_FILE).write_text(json.dumps({"format": "preprocessed", "modulated": True,
                                             "grid": train_run["prep"].grid.to_dict()}))
    raw = tmp_path / "raw"
    raw.mkdir()
    pd.DataFrame({"participant_id": ["sub-01"], "age": [40]}).to_csv(raw / "participants.tsv",
                                                                      sep="\t", index=False)
    status, _, err = predict_cli(tmp_path / "predict", f"train_dir={run}", f"data.root={raw}")
    assert status == 2 and "Traceback" not in err, err
    assert f"make preprocess data.root={raw}" in err


def test_a_cohort_preprocessed_with_other_step_settings_is_refused(train_run, tmp_path, predict_cli,
                                                                  copy_run):
    from omegaconf import OmegaConf

    from brainage.data.derivative import DESCRIPTION, derivative_dir
    from tests.builders import compose_data

    run = copy_run(train_run["run"], tmp_path / "train")
    derivatives = tmp_path / "derivatives"
    data = compose_data("t1", f"root={tmp_path / 'trained_on'}", "source_shape=null",
                        f"derivatives_dir={derivatives}")
    OmegaConf.save(OmegaConf.create({"seed": 0, "data": data}), run / ".hydra" / "config.yaml")
    trained_steps = {"seed": 1, "mask_threshold": 0.15, "n4_iterations": [50, 50, 25]}
    (run / GRID_FILE).write_text(json.dumps({"format": "preprocessed", "modulated": True,
                                             "grid": train_run["prep"].grid.to_dict(),
                                             "preprocess_steps": trained_steps}))
    raw = tmp_path / "raw"
    raw.mkdir()
    pd.DataFrame({"participant_id": ["sub-01"], "age": [40]}).to_csv(raw / "participants.tsv",
                                                                      sep="\t", index=False)
    derivative = derivative_dir(raw, derivatives)
    derivative.mkdir(parents=True)
    (derivative / DESCRIPTION).write_text(json.dumps({"StepSettings": {
        **trained_steps, "mask_threshold": 0.05, "n4_iterations": [50, 25]}}))
    status, _, err = predict_cli(tmp_path / "predict", f"train_dir={run}", f"data.root={raw}")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert (f"error: cohort {raw}: preprocessing steps steps.mask_threshold=0.05 "
            f"steps.n4_iterations=[50,25], but the model of {run} was trained on a derivative made "
            "with steps.mask_threshold=0.15 steps.n4_iterations=[50,50,25]; preprocess the cohort "
            "with the training data's step settings (make preprocess data.root=<raw root> "
            "steps.mask_threshold=0.15 steps.n4_iterations=[50,50,25]") in errors[0]
    assert sorted(p.name for p in (tmp_path / "predict").iterdir()) == [".hydra", "run.json"]

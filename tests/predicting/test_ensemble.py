"""make predict with an ensemble (train_dirs=[…]): the mean of the members' probabilities or ages,
each subject's spread, the mean DTD map conserving the mean explained output, its SD and sign
agreement, and members that cannot form one ensemble refused in one line."""
import json
import re
import shutil

import keras
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.model import fold_age_head
from brainage.neuro.grid import Grid
from brainage.runs import read_record
from brainage.trained.grid import GRID_FILE, TrainedGrid
from tests.builders import run_with_bin_edges

CLASSIFIER_COLUMNS = ["subject_id", "age", "bin", "predicted_bin", "predicted_range", "prob_bin0",
                      "prob_bin1", "prob_bin2", "correct", "prob_sd_bin0", "prob_sd_bin1",
                      "prob_sd_bin2", "members_agreeing", "in_training_split"]
REGRESSOR_COLUMNS = ["subject_id", "age", "predicted_age", "gap", "gap_corrected",
                     "predicted_age_corrected", "gap_prediction_corrected", "predicted_age_sd",
                     "predicted_age_min", "predicted_age_max", "in_training_split"]


def _load(run):
    return fold_age_head(keras.saving.load_model(run / "model.keras", compile=False))


def _outputs(run, volumes) -> np.ndarray:
    return np.asarray(_load(run)(np.asarray(volumes, np.float32)[..., None]), dtype=np.float64)


def _perturbed_member(run, dest, seed: int, scale: float, prep=None, shift=None):
    """A copy of ``run`` whose kernels carry seeded multiplicative noise: another member, as a
    model from another seed would be. ``shift`` is added to the output's bias (members that
    disagree: the tiny classifier itself predicts one bin for everyone); a regressor's
    correction is refitted on its validation split (``prep``), as its training would fit it."""
    from brainage.training.age_gap import AgeBiasCorrection

    shutil.copytree(run, dest)
    model = _load(run)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([w * (1 + scale * rng.standard_normal(w.shape)).astype(w.dtype)
                           if w.ndim > 1 else w for w in layer.get_weights()])
    if shift is not None:
        kernel, bias = model.layers[-1].get_weights()
        model.layers[-1].set_weights([kernel, bias + np.asarray(shift, bias.dtype)])
    model.save(dest / "model.keras")
    if prep is not None:
        val = prep.indices("val")
        predicted = _outputs(dest, prep.volumes[val])[:, 0]
        correction = AgeBiasCorrection.fit(prep.table["age"].to_numpy(float)[val], predicted)
        (dest / "metrics.json").write_text(json.dumps({
            "task": "regression", "age_gap": {"correction": correction.as_dict(),
                                              "fitted_on": "val"}}))
    return dest


@pytest.fixture(scope="module")
def classifiers(train_run, tmp_path_factory):
    """Three classifiers on one grid: the session's run and two perturbed copies leaning towards
    the bin it predicts least, by the median margin it lacks, so that members disagree on about
    half of the subjects whatever the session's run learnt."""
    tmp = tmp_path_factory.mktemp("classifiers")
    logits = _outputs(train_run["run"], train_run["prep"].volumes)
    rare = int(np.bincount(logits.argmax(axis=1), minlength=logits.shape[1]).argmin())
    shift = np.zeros(logits.shape[1])
    shift[rare] = np.median(logits.max(axis=1) - logits[:, rare])
    return [train_run["run"]] + [_perturbed_member(train_run["run"], tmp / f"member{k}", k, 0.1,
                                                   shift=shift) for k in (1, 2)]


def _read(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "predictions.csv",
                       dtype={"subject_id": str, "in_training_split": str}
                       ).fillna({"in_training_split": ""})


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _dirs(runs) -> str:
    return "train_dirs=[" + ",".join(str(r) for r in runs) + "]"


@pytest.mark.slow
def test_a_classifier_ensemble_means_its_members_probabilities_and_maps(train_run, classifiers,
                                                                        tmp_path, predict_cli):
    run_dir = tmp_path / "ensemble"
    status, out, err = predict_cli(run_dir, _dirs(classifiers), "method=dtd")
    assert status == 0, err
    table = _read(run_dir)
    assert list(table.columns) == CLASSIFIER_COLUMNS
    prep = train_run["prep"]
    order = [list(prep.table["subject_id"]).index(s) for s in table["subject_id"]]
    members = np.stack([_softmax(_outputs(run, prep.volumes))[order] for run in classifiers])
    mean = members.mean(axis=0)
    np.testing.assert_allclose(table.filter(regex=r"^prob_bin").to_numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(table.filter(like="prob_sd_bin").to_numpy(),
                               members.std(axis=0, ddof=1), rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(table["predicted_bin"], mean.argmax(axis=1))
    agreeing = (members.argmax(axis=2) == mean.argmax(axis=1)).sum(axis=0)
    np.testing.assert_array_equal(table["members_agreeing"], agreeing)
    assert agreeing.min() < 3  # members disagree on some subjects
    summary = json.loads((run_dir / "predict.json").read_text())
    assert summary["n_members"] == 3
    assert [m["train_dir"] for m in summary["members"]] == [str(r) for r in classifiers]
    truth = table["bin"].to_numpy(int)
    accuracies = [float((m.argmax(axis=1) == truth).mean()) for m in members]
    assert [m["accuracy"]["all"]["accuracy"] for m in summary["members"]] == \
        pytest.approx(accuracies)
    assert summary["against_members"]["median_member"] == pytest.approx(np.median(accuracies))
    assert summary["against_members"]["best_member"] == pytest.approx(max(accuracies))
    assert "with an ensemble of 3" in out
    _check_spread_maps(run_dir, classifiers, prep, table, subject=int(np.argmin(agreeing)))


def _check_spread_maps(run_dir, runs, prep, table, subject: int) -> None:
    """One subject's mean, SD and agreement maps against the members' DTD maps of the
    ensemble's bin, computed here member by member."""
    from brainage.predicting.methods import method_params
    from brainage.trained import load_analyzers

    sid = table["subject_id"][subject]
    x = np.asarray(prep.volumes[[list(prep.table["subject_id"]).index(sid)]], np.float32)[..., None]
    target = int(table["predicted_bin"][subject])
    explanations = [load_analyzers(_load(run), {"dtd": method_params("dtd")})["dtd"]
                    .explain(x, target=target) for run in runs]
    maps = [np.asarray(e.maps)[0, ..., 0].astype(np.float64) for e in explanations]
    mean = sum(maps) / len(maps)
    sd = np.sqrt(sum((m - mean) ** 2 for m in maps) / (len(maps) - 1))
    agreement = np.zeros(mean.shape)
    for m in maps:
        agreement += (np.sign(m) == np.sign(mean)) & (mean != 0)
    agreement /= len(maps)
    files = {kind: nib.load(run_dir / "maps" / f"{sid}_dtd_{kind}.nii.gz")
             for kind in ("predicted", "predicted_sd", "predicted_agreement")}
    cropped = {kind: prep.grid.crop(np.asarray(img.dataobj)) for kind, img in files.items()}
    scale = np.abs(mean).max()
    np.testing.assert_allclose(cropped["predicted"], mean, rtol=1e-4, atol=1e-5 * scale)
    # DTD conserves: the mean map sums to the members' mean logit of the ensemble's bin
    logits = [float(np.asarray(e.outputs)[0]) for e in explanations]
    assert float(cropped["predicted"].astype(np.float64).sum()) == \
        pytest.approx(np.mean(logits), rel=1e-5)
    np.testing.assert_allclose(cropped["predicted_sd"], sd, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(cropped["predicted_agreement"], agreement, atol=1e-6)
    header = files["predicted_agreement"].header
    assert (float(header["cal_min"]), float(header["cal_max"])) == (0.0, 1.0)
    sd_header = files["predicted_sd"].header
    assert 0 < float(sd_header["cal_min"]) < float(sd_header["cal_max"]) <= sd.max() * (1 + 1e-5)
    for img in files.values():
        np.testing.assert_allclose(img.affine, prep.grid.affine)
        assert img.shape == prep.grid.source_shape


@pytest.mark.slow
def test_the_ensembles_probabilities_are_the_mean_of_its_members_predicted_alone(classifiers,
                                                                                tmp_path,
                                                                                predict_cli):
    ensemble = tmp_path / "ensemble"
    assert predict_cli(ensemble, _dirs(classifiers), "maps=false")[0] == 0
    alone = []
    for k, run in enumerate(classifiers):
        status, _, err = predict_cli(tmp_path / f"alone{k}", f"train_dir={run}", "maps=false")
        assert status == 0, err
        alone.append(_read(tmp_path / f"alone{k}"))
    table = _read(ensemble)
    assert all(list(single["subject_id"]) == list(table["subject_id"]) for single in alone)
    members = np.stack([single.filter(regex=r"^prob_bin").to_numpy() for single in alone])
    np.testing.assert_allclose(table.filter(regex=r"^prob_bin").to_numpy(), members.mean(axis=0),
                               rtol=1e-5)
    summary = json.loads((ensemble / "predict.json").read_text())
    for k, member in enumerate(summary["members"]):
        assert member["accuracy"] == \
            json.loads((tmp_path / f"alone{k}" / "predict.json").read_text())["accuracy"]
    assert summary["maps"] is None and not (ensemble / "maps").exists()


@pytest.mark.slow
def test_a_regression_ensemble_means_ages_and_its_mean_dtd_map_sums_to_the_mean_age(
        regression_run, tmp_path, predict_cli):
    from brainage.training.age_gap import AgeBiasCorrection

    prep = regression_run["prep"]
    runs = [regression_run["run"],
            _perturbed_member(regression_run["run"], tmp_path / "member1", 1, 0.05, prep)]
    run_dir = tmp_path / "ensemble"
    status, out, err = predict_cli(run_dir, _dirs(runs), "method=dtd")
    assert status == 0, err
    table = _read(run_dir)
    assert list(table.columns) == REGRESSOR_COLUMNS
    order = [list(prep.table["subject_id"]).index(s) for s in table["subject_id"]]
    ages = np.stack([_outputs(run, prep.volumes)[order, 0] for run in runs])
    np.testing.assert_allclose(table["predicted_age"], ages.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(table["predicted_age_sd"], ages.std(axis=0, ddof=1), rtol=1e-3)
    np.testing.assert_allclose(table["predicted_age_min"], ages.min(axis=0), rtol=1e-5)
    np.testing.assert_allclose(table["predicted_age_max"], ages.max(axis=0), rtol=1e-5)
    # one validation split: the correction fitted on the members' mean validation predictions
    val = prep.indices("val")
    true_ages = prep.table["age"].to_numpy(float)
    mean_val = np.mean([_outputs(run, prep.volumes[val])[:, 0] for run in runs], axis=0)
    fitted = AgeBiasCorrection.fit(true_ages[val], mean_val)
    np.testing.assert_allclose(table["gap_corrected"],
                               fitted.corrected_gap(table["age"], table["predicted_age"]),
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(table["predicted_age_corrected"],
                               fitted.corrected_prediction(table["predicted_age"]), rtol=1e-5)
    for sid, age in zip(table["subject_id"], table["predicted_age"]):
        relevance = np.asarray(nib.load(run_dir / "maps" / f"{sid}_dtd_predicted.nii.gz").dataobj)
        assert float(relevance.astype(np.float64).sum()) == pytest.approx(age, rel=1e-5), sid
    summary = json.loads((run_dir / "predict.json").read_text())
    assert summary["age_gap"]["correction"] == pytest.approx(fitted.as_dict(), rel=1e-6)
    assert "mean validation predictions" in summary["age_gap"]["combined"]
    assert summary["against_members"]["metric"] == "mae"


def _with_grid(run, dest, grid: Grid, steps=None):
    shutil.copytree(run, dest)
    (dest / GRID_FILE).write_text(json.dumps(TrainedGrid("nifti", None, grid, steps).to_dict()))
    return dest


def _without_correction(run, dest):
    shutil.copytree(run, dest)
    (dest / "metrics.json").write_text(json.dumps({"age_gap": {"correction": None,
                                                               "problem": "slope -0.1"}}))
    return dest


@pytest.mark.parametrize("case", ["grid", "steps", "bins", "task", "correction", "twice",
                                  "train_dir", "one"])
def test_runs_that_cannot_form_one_ensemble_are_refused_in_one_line(case, train_run,
                                                                     regression_run, tmp_path,
                                                                     predict_cli):
    run, grid = train_run["run"], train_run["prep"].grid
    shifted = Grid(grid.affine, grid.source_shape, (0, 0, 0), grid.crop_shape)
    given, message = {
        "grid": (lambda: [_dirs([run, _with_grid(run, tmp_path / "other", shifted)])],
                 rf"ensemble member {tmp_path / 'other'}: a crop \(offset, shape\) of \(\(0, 0, 0\)"
                 rf".*, but the first member {run} has \(\(1, 1, 1\)"),
        "steps": (lambda: [_dirs([_with_grid(run, tmp_path / "first", grid, {"mask_threshold": 0.15}),
                                  _with_grid(run, tmp_path / "other", grid, {"mask_threshold": 0.05})])],
                  rf"ensemble member {tmp_path / 'other'}: preprocessing steps \{{'mask_threshold': "
                  rf"0\.05\}}, but the first member {tmp_path / 'first'} has \{{'mask_threshold': 0\.15\}}"),
        "bins": (lambda: [_dirs([run, run_with_bin_edges(run, tmp_path / "other", [10, 50, 70, 101])])],
                 rf"ensemble member {tmp_path / 'other'}: age bins \[10\.0, 50\.0, 70\.0, 101\.0\], "
                 rf"but the first member {run} has \[10\.0, 40\.0, 70\.0, 101\.0\]"),
        "task": (lambda: [_dirs([run, regression_run["run"]])],
                 rf"ensemble member {regression_run['run']}: task regression, but the first "
                 rf"member {run} has classification"),
        "correction": (lambda: [_dirs([regression_run["run"],
                                       _without_correction(regression_run["run"],
                                                           tmp_path / "other")])],
                       rf"ensemble member {tmp_path / 'other'}: its training fitted no age-bias "
                       r"correction \(slope -0\.1\)"),
        "twice": (lambda: [_dirs([run, run])], rf"train_dirs lists the training run {run} twice"),
        "train_dir": (lambda: [_dirs([run, run]), f"train_dir={run}"],
                      r"give train_dirs=\[…\] \(an ensemble\) or train_dir/model_path"),
        "one": (lambda: [_dirs([run])], r"an ensemble needs at least two"),
    }[case]
    run_dir = tmp_path / "predict"
    status, _, err = predict_cli(run_dir, *given())
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert re.search(message, errors[0]), errors[0]
    assert read_record(run_dir).state == "failed"
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "run.json"]

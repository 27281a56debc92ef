"""The explain stage end to end on a tiny cohort and a tiny trained-run directory."""
import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.errors import ExplainError, RunDirError
from brainage.explain import explain
from tests.builders import REPO, RUN_SHAPE, compose_explain


@pytest.fixture(scope="module")
def explained(train_run, tmp_path_factory):
    cfg = compose_explain(train_run, "explainer=[dtd,gradient_x_input]", "subjects=all",
                          "targets=[predicted,all]", "group.correct_only=false")
    out = tmp_path_factory.mktemp("explain_run")
    summary = explain(cfg, out)
    return out, summary, train_run


def test_contract_files_exist(explained):
    out, summary, train = explained
    prep = train["prep"]
    for sid in prep.table["subject_id"]:
        for method in ("dtd", "gradient_x_input"):
            assert (out / "maps" / f"{sid}_{method}_predicted.nii.gz").is_file()
            for k in range(3):
                assert (out / "maps" / f"{sid}_{method}_class{k}.nii.gz").is_file()
    for method in ("dtd", "gradient_x_input"):
        for k in range(3):
            assert (out / "group" / f"{method}_bin{k}_mean.nii.gz").is_file()
    assert (out / "regions" / "custom_subjects.csv").is_file()
    assert (out / "regions" / "custom_summary.csv").is_file()
    assert (out / "report.html").is_file() and (out / "explain.json").is_file()
    assert not (out / ".incomplete").exists()
    assert json.loads((out / "explain.json").read_text())["train_dir"] == str(train["run"])


def test_maps_are_on_the_subjects_grid_and_conserve_the_logit(explained):
    out, _, train = explained
    sid = train["prep"].table["subject_id"][0]
    img = nib.load(out / "maps" / f"{sid}_dtd_predicted.nii.gz")
    src = nib.load(train["prep"].table["path"][0])
    assert img.shape == RUN_SHAPE
    np.testing.assert_allclose(img.affine, src.affine)
    data = img.get_fdata()
    assert not data[0].any() and not data[:, :, 12].any()  # outside the crop
    cons = pd.read_csv(out / "conservation.csv")
    assert list(cons.columns) == ["subject_id", "method", "target", "output", "relevance_sum",
                                  "rel_error", "class", "negative_share"]
    row = cons[(cons.subject_id == sid) & (cons.method == "dtd") & (cons.target == "predicted")].iloc[0]
    assert data.sum() == pytest.approx(row["relevance_sum"], rel=1e-4)
    dtd = cons[(cons.method == "dtd") & (cons.output > 0)]
    assert (dtd["rel_error"] < 1e-4).all()


def test_group_maps_are_means_of_normalised_subject_maps(explained):
    out, _, train = explained
    table = train["prep"].table
    subjects = pd.read_csv(out / "subjects.csv", dtype={"subject_id": str})
    for k in range(3):
        ids = subjects[subjects["bin"] == k]["subject_id"]
        maps = [nib.load(out / "maps" / f"{s}_dtd_predicted.nii.gz").get_fdata() for s in ids]
        expected = np.mean([m / m.sum() for m in maps], axis=0)
        group = nib.load(out / "group" / f"dtd_bin{k}_mean.nii.gz").get_fdata()
        np.testing.assert_allclose(group, expected, rtol=1e-4, atol=1e-7)
    assert len(table) == len(subjects)


def test_region_tables_add_up(explained):
    out, _, _ = explained
    subj = pd.read_csv(out / "regions" / "custom_subjects.csv")
    assert list(subj.columns) == ["subject_id", "bin", "method", "region", "n_voxels", "sum", "mean",
                                  "density", "share"]
    shares = subj.groupby(["subject_id", "method"])["share"].sum()
    np.testing.assert_allclose(shares, 1.0, rtol=1e-6)
    assert set(subj["region"]) == {"(outside atlas)", "Left_Core", "Top"}
    summary = pd.read_csv(out / "regions" / "custom_summary.csv")
    assert {"mean_share", "sd_share", "rank"} <= set(summary.columns)


def test_report_references_every_figure(explained):
    out, _, _ = explained
    html = (out / "report.html").read_text()
    figures = sorted(p.relative_to(out).as_posix() for p in (out / "figures").glob("*.png"))
    assert figures and all(f in html for f in figures)
    assert "conservation.png" in html and "group_dtd.png" in html
    viewers = list((out / "group").glob("*_viewer.html"))
    assert viewers and all(v.relative_to(out).as_posix() in html for v in viewers)


@pytest.mark.parametrize("override, message", [
    ("train_dir=/nonexistent/run", "train_dir=/nonexistent/run does not exist"),
    ("subjects=[nobody]", "subjects not in the training run's cohort: nobody"),
    ("explainer=gradcam", "explainer gradcam: gradcam: model has no layer 'no_such_layer'"),
])
def test_bad_requests_give_clear_errors_and_no_complete_run(train_run, tmp_path, override, message):
    extra = ["explainer.gradcam.layer=no_such_layer"] if override == "explainer=gradcam" else []
    cfg = compose_explain(train_run, override, *extra)
    with pytest.raises(ExplainError, match=message):
        explain(cfg, tmp_path)
    assert not (tmp_path / "report.html").exists() and not (tmp_path / ".incomplete").exists()


def test_train_dir_without_model(train_run, tmp_path):
    empty = tmp_path / "run"
    (empty / ".hydra").mkdir(parents=True)
    cfg = compose_explain(train_run, f"train_dir={empty}")
    with pytest.raises(ExplainError, match="holds no model.keras"):
        explain(cfg, tmp_path / "out")


def test_model_input_shape_must_match_the_data(train_run, tmp_path):
    from brainage.model import build_model

    run = tmp_path / "train"
    (run / ".hydra").mkdir(parents=True)
    build_model(input_shape=(12, 12, 12, 1), widths=(2,), dense_units=2).save(run / "model.keras")
    for f in (".hydra/config.yaml", "split.csv"):
        (run / f).write_bytes((train_run["run"] / f).read_bytes())
    cfg = compose_explain(train_run, f"train_dir={run}")
    with pytest.raises(ExplainError, match=r"expects inputs \(12, 12, 12, 1\) but the data are "
                                           r"\(9, 10, 11, 1\)"):
        explain(cfg, tmp_path / "out")


def test_refuses_to_overwrite_an_earlier_run(train_run, tmp_path):
    (tmp_path / "report.html").write_text("earlier")
    with pytest.raises(RunDirError):
        explain(compose_explain(train_run), tmp_path)
    assert (tmp_path / "report.html").read_text() == "earlier"


@pytest.mark.slow
def test_cli_reports_errors_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "brainage.explain", "train_dir=/nonexistent",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 2
    assert "error: train_dir=/nonexistent does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_explained_subject_gets_an_overlay(train_run, tmp_path):
    cfg = compose_explain(train_run, "figures.subjects=all", "subjects=test")
    explain(cfg, tmp_path)
    test_ids = train_run["prep"].table.query("split == 'test'")["subject_id"]
    html = (tmp_path / "report.html").read_text()
    for sid in test_ids:
        assert (tmp_path / "figures" / f"{sid}_dtd.png").is_file()
        assert f"figures/{sid}_dtd.png" in html


def test_an_atlas_that_cannot_be_resampled_is_a_clear_error(train_run, tmp_path):
    flat = tmp_path / "flat_atlas.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 5), np.int16), np.eye(4)), str(flat))
    cfg = compose_explain(train_run, f"atlas.path={flat}", "atlas.labels=null")
    with pytest.raises(ExplainError, match=r"atlas custom: .*flat_atlas\.nii\.gz"):
        explain(cfg, tmp_path / "out")
    assert not (tmp_path / "out" / "report.html").exists()


def test_a_bare_true_target_means_the_true_class_not_class_1(train_run, tmp_path):
    # Hydra parses targets=[predicted,true] into ["predicted", True]; True == 1 in Python.
    cfg = compose_explain(train_run, "targets=[predicted,true]", "subjects=test")
    assert list(cfg.targets) == ["predicted", True]
    explain(cfg, tmp_path)
    cons = pd.read_csv(tmp_path / "conservation.csv")
    assert set(cons["target"]) == {"predicted", "true"}
    truth = dict(zip(train_run["prep"].table["subject_id"], train_run["prep"].table["bin"]))
    rows = cons[cons.target == "true"]
    assert (rows["class"] == rows["subject_id"].map(truth)).all()
    with pytest.raises(ExplainError, match="target False"):
        explain(compose_explain(train_run, "targets=[false]"), tmp_path / "other")

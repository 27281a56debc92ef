"""The explain stage end to end on a tiny cohort and a tiny trained-run directory."""
import json
import os
import re
import shutil
import stat
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.errors import ExplainError, RunDirError, TrainedRunError
from brainage.explain import explain
from brainage.neuro.nifti import NOT_SCORED, DisplayRange
from tests.builders import REPO, RUN_CROP, RUN_SHAPE, compose_explain, compose_stage

METHODS = "explainer=[dtd,gradient_x_input]"  # DTD and a signed method
UMASK = 0o002  # the stage runs under it: every file must come out 0664, as a plain open makes it


@pytest.fixture(scope="module")
def explained(train_run, tmp_path_factory):
    cfg = compose_explain(train_run, METHODS, "subjects=all", "targets=[predicted,all]",
                          "group.correct_only=false")
    out = tmp_path_factory.mktemp("explain_run")
    previous = os.umask(UMASK)
    try:
        summary = explain(cfg, out)
    finally:
        os.umask(previous)
    return out, summary, train_run


@pytest.fixture(scope="module")
def explained_over_background(train_run, tmp_path_factory):
    """The tiny run's model explaining its cohort with the grey matter zeroed outside a ball.

    The tiny cohort is "brain" to its edges; here a background of zeros surrounds the brain, as
    in real images, so what a viewer shows outside the brain can be counted.
    """
    root = tmp_path_factory.mktemp("ball_cohort")
    shutil.copy(train_run["prep"].table["path"][0].rsplit("/gm/", 1)[0] + "/participants.tsv",
                root / "participants.tsv")
    ijk = np.indices(RUN_SHAPE).transpose(1, 2, 3, 0)
    centre, radius = (np.array(RUN_SHAPE) - 1) / 2, np.array(RUN_SHAPE) * 0.42
    ball = np.linalg.norm((ijk - centre) / radius, axis=-1) <= 1
    (root / "gm").mkdir()
    for path in train_run["prep"].table["path"]:
        img = nib.load(path)
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj) * ball, img.affine, img.header),
                 str(root / "gm" / os.path.basename(path)))
    cfg = compose_explain(train_run, METHODS, "subjects=all", "targets=[predicted,all]",
                          "group.correct_only=false", f"+data.root={root}",
                          f"+data.cache.dir={root / 'cache'}")
    out = tmp_path_factory.mktemp("explain_over_background")
    explain(cfg, out)
    return out, root, float(cfg.display.brain_threshold)


def brain_masks(out, grey_matter_of, threshold: float) -> dict:
    """Each map's brain: its subject's GM above the threshold; the explained subjects' mean GM
    for a group map."""
    subjects = pd.read_csv(out / "subjects.csv", dtype={"subject_id": str})["subject_id"]
    gm = {sid: np.asarray(nib.load(grey_matter_of(sid)).dataobj) for sid in subjects}
    mean_gm = np.mean(list(gm.values()), axis=0)
    masks = {p: gm[p.name.split("_")[0]] > threshold for p in (out / "maps").glob("*.nii.gz")}
    masks.update({p: mean_gm > threshold for p in (out / "group").glob("*_mean.nii.gz")})
    return masks


def check_what_a_viewer_shows(masks: dict) -> int:
    """At most 5 % of the shown voxels outside the brain, at least 1 % of the brain shown;
    a map without relevance in its brain (a class whose logit DTD cannot explain) has no range
    and shows nothing. Returns how many maps have a range."""
    with_range = 0
    for path, brain in masks.items():
        img = nib.load(path)
        data = np.asarray(img.dataobj)
        display = DisplayRange.of(img)
        shown = display.shown(data)
        if not (data[brain] != 0).any():
            assert (display.cal_min, display.cal_max) == (0, 0) and not shown.any(), path.name
            continue
        with_range += 1
        assert 0 < display.cal_min < display.cal_max, path.name
        assert (shown & ~brain).sum() <= 0.05 * shown.sum(), path.name
        assert (shown & brain).sum() >= 0.01 * brain.sum(), path.name
    return with_range


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    with pytest.raises(TrainedRunError, match=message):
        explain(cfg, tmp_path)
    assert not (tmp_path / "report.html").exists() and not (tmp_path / ".incomplete").exists()


def test_train_dir_without_model(train_run, tmp_path):
    empty = tmp_path / "run"
    (empty / ".hydra").mkdir(parents=True)
    cfg = compose_explain(train_run, f"train_dir={empty}")
    with pytest.raises(TrainedRunError, match="holds no model.keras"):
        explain(cfg, tmp_path / "out")


def test_model_input_shape_must_match_the_data(train_run, tmp_path):
    from brainage.model import build_model

    run = tmp_path / "train"
    (run / ".hydra").mkdir(parents=True)
    build_model(input_shape=(12, 12, 12, 1), widths=(2,), dense_units=2).save(run / "model.keras")
    for f in (".hydra/config.yaml", "split.csv"):
        (run / f).write_bytes((train_run["run"] / f).read_bytes())
    cfg = compose_explain(train_run, f"train_dir={run}")
    with pytest.raises(TrainedRunError, match=r"expects inputs \(12, 12, 12, 1\) but the data are "
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_every_map_shows_its_strongest_relevance_over_the_brain(explained):
    out, _, train = explained
    path_of = dict(zip(train["prep"].table["subject_id"], train["prep"].table["path"]))
    masks = brain_masks(out, path_of.get, 0.1)
    assert len(masks) == 24 * 2 * 4 + 2 * 3  # subjects x methods x targets, and group maps
    assert check_what_a_viewer_shows(masks) >= 24 * 2 * 2 + 2 * 3


@pytest.mark.slow
def test_over_a_background_the_viewer_shows_the_brain_not_the_box(explained_over_background):
    out, root, threshold = explained_over_background
    masks = brain_masks(out, lambda sid: root / "gm" / f"{sid}_gm.nii.gz", threshold)
    assert check_what_a_viewer_shows(masks) >= 24 * 2 * 2 + 2 * 3
    # the old header (cal_min 0, or -cal_max for a signed map) showed the zero background too
    grad = nib.load(out / "maps" / "sub-00_gradient_x_input_predicted.nii.gz")
    data, brain = np.asarray(grad.dataobj), masks[out / "maps" / "sub-00_gradient_x_input_predicted.nii.gz"]
    old_shown = data > -np.percentile(np.abs(data[data != 0]), 99.5)
    assert (old_shown & ~brain).sum() > 0.5 * old_shown.sum()


@pytest.mark.slow
def test_headers_name_method_target_and_checks(explained):
    out, _, train = explained
    run = train["run"].name
    for method in ("dtd", "gradient_x_input"):
        hdr = nib.load(out / "maps" / f"sub-00_{method}_class1.nii.gz").header
        assert hdr.get_intent() == ("estimate", (), method[:15])
        descrip = hdr["descrip"].item().decode()
        assert descrip.startswith(f"{method} target=class1:class1 ")
        assert f"checks={NOT_SCORED}" in descrip
        group = nib.load(out / "group" / f"{method}_bin2_mean.nii.gz").header["descrip"].item()
        assert re.fullmatch(rf"{method} target=predicted bin2 mean share n=\d+ checks={NOT_SCORED}",
                            group.decode())
    assert f"run={run}" in nib.load(out / "maps" / "sub-00_dtd_predicted.nii.gz").header[
        "descrip"].item().decode()
    grad = nib.load(out / "maps" / "sub-00_gradient_x_input_predicted.nii.gz")
    assert DisplayRange.of(grad).signed and grad.header["cal_min"] > 0


@pytest.mark.slow
def test_outputs_respect_the_umask(explained):
    out, _, _ = explained
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 200
    modes = {p.relative_to(out).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert {m for m in modes.values()} == {oct(0o666 & ~UMASK)}, modes


def referenced(html_text: str) -> list:
    return re.findall(r"""(?:src|href)\s*=\s*['"]([^'"#]+)""", html_text)


@pytest.mark.slow
def test_the_report_needs_nothing_from_the_network(explained):
    out, _, _ = explained
    html = (out / "report.html").read_text()
    pages = [out / "report.html", *(out / "group").glob("*_viewer.html")]
    for page in pages:
        text = page.read_text()
        for target in referenced(text):
            assert not re.match(r"[a-z]+:", target) or target.startswith("data:"), (page, target)
            if not target.startswith("data:"):
                assert (page.parent / target).resolve().is_relative_to(out.resolve()), target
                assert (page.parent / target).is_file(), target
        assert not re.search(r"url\(\s*['\"]?https?:", text)
    config = json.loads(re.search(r"id='viewer-config'>(.*?)</script>", html, re.S).group(1))
    keys = {e[k] for e in config["entries"] for k in ("map", "background")} | {"atlas"}
    assert all((out / config["data"] / f"{key}.js").is_file() for key in keys)
    assert len(config["entries"]) == 6 + 2  # the group maps, then one subject (figures.subjects=1)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium to render the report headless")
def test_the_report_renders_offline_in_a_headless_browser(explained, tmp_path):
    out, _, _ = explained
    # Every http(s) request goes to a proxy that is not there: only file:// can load.
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
         "--enable-unsafe-swiftshader", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path}",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         "--virtual-time-budget=20000", "--dump-dom", (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=180)
    assert '<body data-viewer="ready">' in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    status = re.search(r'<p id="viewer-status">([^<]*)', proc.stdout).group(1)
    assert re.search(r"R = [-0-9.e]+ +(Left_Core|Top|\(outside atlas\))$", status), status


def test_the_default_explainers_are_the_scorecards_dtd_variant_and_the_method_beating_it():
    """make explain's default is what the scorecard rule chose (DTD rooted at the youngest mean),
    then DeepLIFT, which beat every DTD variant on the same scorecard (both youngest-mean rooted)."""
    cfg = compose_stage("explain")
    assert list(cfg.explainer) == ["dtd_reference", "deeplift"]
    assert cfg.explainer.dtd_reference.reference == "youngest_mean"
    assert cfg.explainer.deeplift.reference == "youngest_mean"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["deeplift", "dtd_reference"])
def test_a_named_reference_is_the_training_splits_youngest_mean(train_run, tmp_path, method):
    """deeplift and dtd_reference (explain's default) with reference=youngest_mean: each map sums
    to f(x) − f(young mean)."""
    import keras

    from brainage.data.reference_images import reference_image

    explain(compose_explain(train_run, f"explainer={method}", "subjects=test"), tmp_path)
    prep = train_run["prep"]
    model = keras.saving.load_model(train_run["run"] / "model.keras", compile=False)
    reference = model.predict(reference_image(prep, "youngest_mean")[None], verbose=0)[0]
    cons = pd.read_csv(tmp_path / "conservation.csv", dtype={"subject_id": str})
    rows = dict(zip(prep.table["subject_id"], range(len(prep.table))))
    for _, row in cons.iterrows():
        x = np.asarray(prep.volumes[[rows[row.subject_id]]], np.float32)[..., None]
        logits = model.predict(x, verbose=0)[0]
        data = nib.load(tmp_path / "maps" / f"{row.subject_id}_{method}_predicted.nii.gz").get_fdata()
        explained = logits[row["class"]] - reference[row["class"]]
        assert data.sum() == pytest.approx(explained, rel=1e-3, abs=1e-4)
        assert row.rel_error < 1e-4


@pytest.mark.slow
def test_maps_of_a_method_that_failed_its_checks_say_so(train_run, tmp_path):
    """With an evaluate run of the same model under outputs_dir, each map's descrip and the report
    carry the method's verdict from its scorecard (first target mode)."""
    outputs = tmp_path / "outputs"
    evaluate = outputs / "evaluate" / "2026-01-03_00-00-00"
    evaluate.mkdir(parents=True)
    (evaluate / "evaluate.json").write_text(json.dumps({"train_dir": str(train_run["run"])}))
    pd.DataFrame({"method": ["dtd", "dtd", "gradient_x_input"],
                  "target": ["predicted", "predicted-vs-mean", "predicted"],
                  "verdict": ["fails: randomisation", "pass", "pass"]}).to_csv(
        evaluate / "scorecard.csv", index=False)
    cfg = compose_explain(train_run, "explainer=[dtd,gradient_x_input]", f"outputs_dir={outputs}",
                          "subjects=[sub-00]")
    explain(cfg, tmp_path / "run")
    maps = tmp_path / "run" / "maps"
    dtd = nib.load(maps / "sub-00_dtd_predicted.nii.gz").header["descrip"].item().decode()
    grad = nib.load(maps / "sub-00_gradient_x_input_predicted.nii.gz").header["descrip"].item()
    assert "checks=fails: randomisation" in dtd and "checks=passed" in grad.decode()
    group = next((tmp_path / "run" / "group").glob("dtd_bin*_mean.nii.gz"))
    assert "checks=fails: randomisation" in nib.load(group).header["descrip"].item().decode()
    report = (tmp_path / "run" / "report.html").read_text()
    assert "<b>dtd</b>: fails: randomisation" in report


@pytest.mark.slow
def test_a_residual_network_run_is_explained_end_to_end(train_run, tmp_path):
    """A run directory holding a model=resnet3d network (branching: residual Adds) is explained
    like the seed's, by DTD (conserving) and guided backpropagation."""
    import keras

    from brainage.model import build_resnet3d

    run = tmp_path / "run"
    shutil.copytree(train_run["run"], run)
    keras.utils.set_random_seed(0)
    build_resnet3d(tuple(RUN_CROP) + (1,), widths=(3, 4), dense_units=6, n_classes=3).save(
        run / "model.keras")
    cfg = compose_explain({**train_run, "run": run}, "explainer=[dtd,guided_backprop]",
                          "subjects=test", "group.correct_only=false")
    explain(cfg, tmp_path / "out")
    cons = pd.read_csv(tmp_path / "out" / "conservation.csv")
    assert set(cons["method"]) == {"dtd", "guided_backprop"}
    dtd = cons[(cons.method == "dtd") & (cons.output > 0)]
    assert len(dtd) and (dtd["rel_error"] < 1e-4).all()
    sid = cons["subject_id"].iloc[0]
    assert (tmp_path / "out" / "maps" / f"{sid}_guided_backprop_predicted.nii.gz").exists()


@pytest.mark.slow
def test_a_default_explain_run_writes_both_default_methods(train_run, tmp_path):
    """No explainer override: the maps, group maps and region tables of dtd_reference and
    DeepLIFT, both rooted at the youngest-bin mean."""
    cfg = compose_stage("explain", f"train_dir={train_run['run']}", "atlas=custom",
                        f"atlas.path={train_run['atlas']}", f"atlas.labels={train_run['labels']}",
                        "progress=false", "figures.subjects=1", "subjects=[sub-00,sub-05]")
    summary = explain(cfg, tmp_path)
    assert list(summary["methods"]) == ["dtd_reference", "deeplift"]
    for method in summary["methods"]:
        assert (tmp_path / "maps" / f"sub-00_{method}_predicted.nii.gz").is_file()
        assert list((tmp_path / "group").glob(f"{method}_*mean.nii.gz"))
    regions = pd.read_csv(tmp_path / "regions" / "custom_subjects.csv")
    assert set(regions["method"]) == {"dtd_reference", "deeplift"}

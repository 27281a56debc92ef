"""The infer stage end to end on a tiny synthetic explain run with known effects."""
import json
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.errors import InferError, RunDirError
from brainage.infer import infer
from tests.builders import AFFINE, REPO, SHAPE
from tests.inference.synthetic_runs import REGIONS, atlas_labels, compose_infer

NULL_REGIONS = ("Calc_Control", "Other")


@pytest.fixture(scope="module")
def raw_run(tiny_explain, tmp_path_factory):
    """The stage on the tiny run with relevance as written (no compositional shares)."""
    out = tmp_path_factory.mktemp("infer_raw")
    summary = infer(compose_infer(tiny_explain, "measure=raw"), out)
    table = pd.read_csv(out / "regions" / "custom_inference.csv")
    return out, summary, table


def _region(table, method, region):
    return table[(table["method"] == method) & (table["region"] == region)].iloc[0]


@pytest.mark.slow
def test_planted_region_is_found_raw_and_gm_adjusted(raw_run):
    _, _, table = raw_run
    planted = _region(table, "dtd", "Left_Planted")
    assert planted["p_fwe"] <= 0.002 and planted["p_fwe_adj"] <= 0.002
    assert planted["effect_lo"] > 1 and planted["effect_lo_adj"] > 1  # Hedges' g, 95 % interval
    for region in NULL_REGIONS:
        row = _region(table, "dtd", region)
        assert row["p_fwe"] > 0.05 and row["p_fwe_adj"] > 0.05, region
    assert (table.loc[table["method"] == "gradient", ["p_fwe", "p_fwe_adj"]] > 0.05).all().all()


def test_gm_driven_region_is_significant_raw_but_not_adjusted(raw_run):
    _, _, table = raw_run
    gm_driven = _region(table, "dtd", "Right_GM")
    assert gm_driven["p_fwe"] <= 0.05 and gm_driven["effect"] < 0
    assert gm_driven["p_fwe_adj"] > 0.05
    assert gm_driven["gm_r"] > 0.8


def test_region_table_columns_and_order(raw_run):
    _, summary, table = raw_run
    expected = ["method", "contrast", "region", "n_voxels", "effect_kind", "mean_a", "mean_b",
                "estimate", "effect", "effect_lo", "effect_hi", "t", "df", "p", "p_fdr", "p_fwe"]
    assert list(table.columns[:len(expected)]) == expected
    assert {"effect_adj", "effect_lo_adj", "effect_hi_adj", "t_adj", "p_fdr_adj", "p_fwe_adj",
            "gm_r"} <= set(table.columns)
    assert set(table["contrast"]) == {"bin2_vs_bin0"} and set(table["effect_kind"]) == {"hedges_g"}
    for _, rows in table.groupby("method"):
        assert rows["p_fwe"].is_monotonic_increasing
    assert dict(zip(table["region"], table["n_voxels"]))["Calc_Control"] == 48
    for suffix in ("", "_adj"):  # significance at the run-level FWE threshold
        assert (table[f"significant{suffix}"] == (table[f"p_fwe{suffix}"] <= summary["alpha_fwe"])).all()
    assert summary["regions"]["custom"]["dtd"]["fwe_significant"] == 2


def test_voxel_maps_find_the_planted_voxels_only(raw_run):
    out, summary, _ = raw_run
    labels = atlas_labels()
    assert summary["fwe_scope"] == "run" and summary["n_families"] == 2 * 3  # voxels, raw, adjusted
    assert summary["alpha_fwe"] == pytest.approx(0.05 / 6)
    logp = nib.load(out / "maps" / "dtd_bin2_vs_bin0_logp_fwe.nii.gz").get_fdata()
    significant = logp >= -np.log10(summary["alpha_fwe"])
    assert significant[labels == 1].mean() > 0.5
    assert not significant[(labels == 0) | (labels >= 3)].any()  # nothing outside the effects
    assert summary["voxelwise"]["dtd"]["n_significant"] == int(significant.sum())
    gradient = nib.load(out / "maps" / "gradient_bin2_vs_bin0_logp_fwe.nii.gz").get_fdata()
    assert gradient.max() < -np.log10(summary["alpha_fwe"])
    assert summary["voxelwise"]["gradient"]["n_significant"] == 0


def test_maps_lie_on_the_explain_grid_with_a_viewer_range(raw_run):
    out, summary, _ = raw_run
    t_img = nib.load(out / "maps" / "dtd_bin2_vs_bin0_t.nii.gz")
    assert t_img.shape == SHAPE
    np.testing.assert_allclose(t_img.affine, AFFINE)
    assert int(t_img.header["sform_code"]) == 4
    assert t_img.header.get_intent()[0] == "t test"
    t = t_img.get_fdata()
    voxels = summary["voxelwise"]["dtd"]
    assert float(t_img.header["cal_min"]) == pytest.approx(voxels["t_threshold"], rel=1e-5)
    assert float(t_img.header["cal_max"]) == pytest.approx(np.abs(t).max(), rel=1e-5)
    assert (np.abs(t) > t_img.header["cal_min"]).sum() == voxels["n_significant"]
    assert not t[0].any()  # outside the GM mask
    logp = nib.load(out / "maps" / "dtd_bin2_vs_bin0_logp_fwe.nii.gz")
    assert float(logp.header["cal_min"]) == pytest.approx(-np.log10(summary["alpha_fwe"]), rel=1e-5)
    # no significant voxel: the strongest 0.5 % are shown, and the description says so
    grad = nib.load(out / "maps" / "gradient_bin2_vs_bin0_t.nii.gz")
    assert b"none FWE-significant" in grad.header["descrip"].tobytes()
    assert 0 < grad.header["cal_min"] <= grad.header["cal_max"]


def test_run_directory_report_and_summary(raw_run):
    out, summary, _ = raw_run
    assert json.loads((out / "infer.json").read_text())["design"]["name"] == "bin2_vs_bin0"
    assert not (out / ".incomplete").exists()
    html = (out / "report.html").read_text()
    assert "dtd, gradient" in html and "not scored" in html and "Left_Planted" in html
    figures = sorted(p.relative_to(out).as_posix() for p in (out / "figures").glob("*.png"))
    assert len(figures) == 4 and all(f in html for f in figures)
    assert summary["covariates"]["columns"] == ["site=site-B", "sex=M"]
    assert summary["design"]["n"] == {"bin0": 12, "bin2": 12}
    sens = pd.read_csv(out / "sensitivity.csv")
    dtd = sens[(sens["method"] == "dtd") & (sens["test"] == "raw")].iloc[0]
    assert dtd["sensitivity"] == 1.0 and pd.isna(dtd["control_found"])


def test_shuffled_labels_find_nothing(tiny_explain):
    from brainage.inference.analysis import load_method, min_fwe, prepare, test_method
    from brainage.inference.settings import InferSettings

    ctx = prepare(InferSettings.from_cfg(compose_infer(tiny_explain, "measure=raw")))
    data = load_method(ctx, "dtd")
    for seed in (0, 1, 2):
        shuffled = ctx.design.shuffled(np.random.default_rng(seed))
        p = min_fwe(*test_method(ctx, data, shuffled, seed))
        assert set(p) == {"voxels", "regions:custom", "regions_adj:custom"}
        assert min(p.values()) > 0.05, (seed, p)
    assert min(min_fwe(*test_method(ctx, data, ctx.design, 0)).values()) <= 0.002


@pytest.mark.slow
def test_null_check_reports_rates(tiny_explain, tmp_path):
    summary = infer(compose_infer(tiny_explain, "measure=raw", "null_check.shuffles=5",
                                  "methods=[dtd]", "voxelwise.n_perm=200", "regions.n_perm=200"),
                    tmp_path)
    shuffles = pd.read_csv(tmp_path / "null_check.csv")
    assert len(shuffles) == 5 * 3 and shuffles["min_p_fwe"].between(0, 1).all()
    rates = pd.read_csv(tmp_path / "null_rates.csv")
    overall = rates[(rates["method"] == "any") & (rates["family"] == "any")].iloc[0]
    assert overall["shuffles"] == 5 and overall["rate_lo"] <= overall["rate"] <= overall["rate_hi"]
    assert summary["null_check"][-1]["with_hit"] == overall["with_hit"]
    assert "Null check" in (tmp_path / "report.html").read_text()


def test_share_measure_and_family_scope_find_the_planted_region(tiny_explain, tmp_path):
    summary = infer(compose_infer(tiny_explain, "voxelwise.enabled=false", "fwe_scope=family"),
                    tmp_path)
    assert summary["alpha_fwe"] == 0.05 and summary["n_families"] == 4
    table = pd.read_csv(tmp_path / "regions" / "custom_inference.csv")
    dtd = table[table["method"] == "dtd"]
    assert dtd["region"].iloc[0] == "Left_Planted" and dtd["p_fwe"].iloc[0] <= 0.002
    assert not (tmp_path / "maps").exists()


@pytest.mark.slow
@pytest.mark.parametrize("overrides, name, kind", [
    (["design.kind=correct"], "correct_vs_wrong", "hedges_g"),
    (["design.kind=regressor", "design.column=age", "subjects=test"], "age", "partial_r"),
    (["design.kind=bins", "design.groups=[0,1]", "covariates=[total_gm]"], "bin1_vs_bin0",
     "hedges_g"),
])
def test_other_designs(tiny_explain, tmp_path, overrides, name, kind):
    summary = infer(compose_infer(tiny_explain, "voxelwise.enabled=false", "measure=raw",
                                  *overrides), tmp_path)
    table = pd.read_csv(tmp_path / "regions" / "custom_inference.csv")
    assert summary["design"]["name"] == name and set(table["effect_kind"]) == {kind}
    if name == "age":
        split = tiny_explain["subjects"].set_index("subject_id")["split"]
        assert set(split[summary["subjects"]]) == {"test"}
        assert _region(table, "dtd", "Left_Planted")["p_fwe"] <= 0.05
    if name == "bin1_vs_bin0":
        assert summary["covariates"]["columns"] == ["total_gm"]


@pytest.mark.slow
def test_an_atlas_summed_from_the_maps_matches_the_explain_table(tiny_explain, tmp_path):
    for suffix in (".nii.gz", ".csv"):
        shutil.copy(tiny_explain["base"] / f"atlas{suffix}", tmp_path / f"mine{suffix}")
    atlases = f"regions.atlases=[explain,{tmp_path / 'mine.nii.gz'}]"
    infer(compose_infer(tiny_explain, "voxelwise.enabled=false", atlases), tmp_path / "run")
    read = pd.read_csv(tmp_path / "run" / "regions" / "custom_inference.csv")
    summed = pd.read_csv(tmp_path / "run" / "regions" / "mine_inference.csv")
    pd.testing.assert_frame_equal(read, summed, rtol=1e-4)
    assert len(read) == 2 * len(REGIONS)


@pytest.mark.slow
def test_faithfulness_status_comes_from_an_evaluate_run(tiny_explain, tmp_path):
    evaluate = tmp_path / "evaluate" / "2026-01-03_00-00-00"
    evaluate.mkdir(parents=True)
    (evaluate / "evaluate.json").write_text(json.dumps({
        "train_dir": str(tiny_explain["train"]), "methods": ["dtd", "gradient"],
        "flagged": {"gradient": 0.97}}))
    cfg = compose_infer(tiny_explain, f"explain_dir={tiny_explain['explain']}",
                        f"outputs_dir={tmp_path}", "voxelwise.enabled=false")
    summary = infer(cfg, tmp_path / "run")
    assert summary["faithfulness"] == {"dtd": "passed the randomisation sanity check",
                                       "gradient": "failed the randomisation sanity check"}
    pd.DataFrame({"method": ["dtd", "gradient"], "passed": [False, True]}).to_csv(
        evaluate / "scorecard.csv", index=False)
    summary = infer(cfg, tmp_path / "run2")
    assert summary["faithfulness"] == {"dtd": "failed", "gradient": "passed"}
    assert str(evaluate) in (tmp_path / "run2" / "report.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("overrides, message", [
    (["outputs_dir=/nonexistent/outputs"], "no finished explain run .* run `make explain` first"),
    (["explain_dir=/nonexistent/run"], "explain_dir=/nonexistent/run does not exist"),
    (["methods=[lrp]"], r"method 'lrp' is not in the explain run .* \(it has dtd, gradient\)"),
    (["design.groups=[0,7]"], r"bin 7 has no explained subject \(bins present: 0, 1, 2\)"),
    (["design.kind=regressor", "design.column=gap"], "design.column=gap: no such column"),
    (["voxelwise.n_perm=99"], r"voxelwise.n_perm=99 cannot give p\(FWE\) <= 0.00833 .* at least "
                              "119 permutations"),
])
def test_bad_requests_are_one_line_errors_and_write_nothing(tiny_explain, tmp_path, overrides,
                                                             message):
    with pytest.raises(InferError, match=message) as info:
        infer(compose_infer(tiny_explain, *overrides), tmp_path)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "infer.json").exists() and not (tmp_path / ".incomplete").exists()
    assert not (tmp_path / "report.html").exists()


def test_an_unfinished_explain_run_is_refused(tiny_explain, tmp_path):
    unfinished = tmp_path / "explain"
    shutil.copytree(tiny_explain["explain"], unfinished)
    (unfinished / "explain.json").unlink()
    with pytest.raises(InferError, match="holds no explain.json .*unfinished"):
        infer(compose_infer(tiny_explain, f"explain_dir={unfinished}"), tmp_path / "run")


def test_refuses_to_overwrite_an_earlier_run(tiny_explain, tmp_path):
    (tmp_path / "infer.json").write_text("{}")
    with pytest.raises(RunDirError):
        infer(compose_infer(tiny_explain), tmp_path)
    assert (tmp_path / "infer.json").read_text() == "{}"


@pytest.mark.slow
def test_cli_reports_errors_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "brainage.infer", "explain_dir=/nonexistent",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: explain_dir=/nonexistent does not exist; pass an "
                                   "explain run directory such as outputs/explain/<date>_<time>")


@pytest.mark.slow
def test_tfce_maps_are_written_and_find_the_planted_region(tiny_explain, tmp_path):
    summary = infer(compose_infer(tiny_explain, "measure=raw", "methods=[dtd]", "voxelwise.tfce=true",
                                  "voxelwise.n_perm=39", "regions.atlases=[]"), tmp_path)
    voxels = summary["voxelwise"]["dtd"]
    assert set(voxels["maps"]) == {"t", "logp_fwe", "tfce", "logp_fwe_tfce"}
    logp = nib.load(tmp_path / voxels["maps"]["logp_fwe_tfce"]).get_fdata()
    labels = atlas_labels()
    assert voxels["n_significant_tfce"] > 0
    assert logp[labels == 1].max() >= -np.log10(0.05) > logp[labels >= 3].max()
    assert not (tmp_path / "regions" / "custom_inference.csv").exists()

"""make explain train_dirs=[A,B,C]: an ensemble explained as one model. Its map of a subject is
the mean of its members' maps of the ensemble's target (each member explained alone agrees), the
mean DTD map conserves the mean explained output, SD and agreement maps lie beside it, region
tables give mean ± SD and top-k stability across members, explain.json the ICC(3,1) of regional
relevance; runs that cannot form one ensemble are refused in one line."""
import json
import re
import shutil

import keras
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.ensemble.reliability import icc, reliability_summary
from brainage.explain import explain
from brainage.model import fold_age_head
from brainage.neuro.regions import OUTSIDE
from brainage.runs import read_record
from tests.builders import RUN_SHAPE, compose_stage, exit_status, run_with_bin_edges, write_gm

TOP_K = 3
REGIONS = [f"R{k}" for k in range(1, 9)]


def _load(run):
    return fold_age_head(keras.saving.load_model(run / "model.keras", compile=False))


def _logits(run, volumes) -> np.ndarray:
    return np.asarray(_load(run)(np.asarray(volumes, np.float32)[..., None]), dtype=np.float64)


def _member(run, dest, seed: int, shift):
    """A copy of ``run`` with seeded noise on its kernels and ``shift`` on its output bias:
    another member, leaning towards another bin so that members disagree."""
    shutil.copytree(run, dest)
    model = _load(run)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([w * (1 + 0.1 * rng.standard_normal(w.shape)).astype(w.dtype)
                           if w.ndim > 1 else w for w in layer.get_weights()])
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, bias + np.asarray(shift, bias.dtype)])
    model.save(dest / "model.keras")
    return dest


@pytest.fixture(scope="module")
def members(train_run, tmp_path_factory):
    """Three classifiers on one grid: the session's run and two perturbed copies leaning towards
    the bin it predicts least."""
    tmp = tmp_path_factory.mktemp("members")
    logits = _logits(train_run["run"], train_run["prep"].volumes)
    rare = int(np.bincount(logits.argmax(axis=1), minlength=3).argmin())
    shift = np.zeros(3)
    shift[rare] = np.median(logits.max(axis=1) - logits[:, rare])
    return [train_run["run"]] + [_member(train_run["run"], tmp / f"member{k}", k, shift)
                                 for k in (1, 2)]


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    """Eight regions, the octants of the tiny grid, so that a top 3 means something."""
    tmp = tmp_path_factory.mktemp("octants")
    i, j, k = np.indices(RUN_SHAPE)
    labels = 1 + (i >= 5) + 2 * (j >= 6) + 4 * (k >= 6)
    write_gm(tmp / "atlas.nii.gz", labels.astype(np.int16))
    pd.DataFrame({"index": range(1, 9), "name": REGIONS}).to_csv(tmp / "atlas.csv", index=False)
    return tmp / "atlas.nii.gz", tmp / "atlas.csv", labels


def _compose(atlas, *overrides):
    return compose_stage("explain", "explainer=dtd", "atlas=custom", f"atlas.path={atlas[0]}",
                         f"atlas.labels={atlas[1]}", "progress=false", "figures.subjects=1",
                         "group.correct_only=false", f"regions.top_k={TOP_K}", *overrides)


def _dirs(runs) -> str:
    return "train_dirs=[" + ",".join(str(r) for r in runs) + "]"


@pytest.fixture(scope="module")
def explained(members, atlas, tmp_path_factory):
    """The ensemble explained (targets predicted and true), and each member alone (every class)."""
    tmp = tmp_path_factory.mktemp("explained")
    summary = explain(_compose(atlas, _dirs(members), "targets=[predicted,true]"), tmp / "ensemble")
    for k, run in enumerate(members):
        explain(_compose(atlas, f"train_dir={run}", "targets=[all]"), tmp / f"alone{k}")
    return tmp, summary


def _map(path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj, dtype=np.float64)


def _subjects(out) -> pd.DataFrame:
    return pd.read_csv(out / "subjects.csv", dtype={"subject_id": str})


def _alone_maps(tmp, sid, target: int, n: int = 3) -> np.ndarray:
    return np.stack([_map(tmp / f"alone{k}" / "maps" / f"{sid}_dtd_class{target}.nii.gz")
                     for k in range(n)])


@pytest.mark.slow
def test_the_ensembles_map_is_the_mean_of_its_members_maps_explained_alone(explained, members,
                                                                           train_run):
    tmp, summary = explained
    subjects = _subjects(tmp / "ensemble")
    prep = train_run["prep"]
    rows = [list(prep.table["subject_id"]).index(s) for s in subjects["subject_id"]]
    logits = np.stack([_logits(run, prep.volumes[rows]) for run in members])
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    ensemble_bin = probabilities.mean(axis=0).argmax(axis=1)
    np.testing.assert_array_equal(subjects["predicted"], ensemble_bin)
    assert (logits.argmax(axis=2) != ensemble_bin).any()  # some member has another bin
    for sid, predicted, true_bin in zip(subjects["subject_id"], ensemble_bin, subjects["bin"]):
        for tag, target in (("predicted", predicted), ("true", true_bin)):
            alone = _alone_maps(tmp, sid, target)
            mean = _map(tmp / "ensemble" / "maps" / f"{sid}_dtd_{tag}.nii.gz")
            np.testing.assert_allclose(mean, alone.mean(axis=0), rtol=1e-5,
                                       atol=1e-6 * np.abs(alone).max())
    assert summary["ensemble"]["train_dirs"] == [str(r) for r in members]
    assert summary["ensemble"]["n_members"] == 3


@pytest.mark.slow
def test_the_mean_dtd_map_conserves_the_mean_explained_output(explained, members, train_run):
    tmp, _ = explained
    out = tmp / "ensemble"
    subjects = _subjects(out)
    prep = train_run["prep"]
    rows = [list(prep.table["subject_id"]).index(s) for s in subjects["subject_id"]]
    logits = np.stack([_logits(run, prep.volumes[rows]) for run in members])
    conservation = pd.read_csv(out / "conservation.csv", dtype={"subject_id": str})
    for j, (sid, predicted) in enumerate(zip(subjects["subject_id"], subjects["predicted"])):
        explained_output = logits[:, j, predicted].mean()  # the members' mean logit of its bin
        total = _map(out / "maps" / f"{sid}_dtd_predicted.nii.gz").sum()
        assert total == pytest.approx(explained_output, rel=1e-5), sid
        row = conservation[(conservation["subject_id"] == sid)
                           & (conservation["target"] == "predicted")].iloc[0]
        assert row["output"] == pytest.approx(explained_output, rel=1e-5)
        assert row["relevance_sum"] == pytest.approx(total, rel=1e-6)
        assert row["rel_error"] < 1e-5 and row["class"] == predicted


@pytest.mark.slow
def test_sd_and_agreement_maps_of_one_subject_by_hand(explained, train_run):
    tmp, _ = explained
    out = tmp / "ensemble"
    subjects = _subjects(out)
    sid, predicted = subjects["subject_id"][0], int(subjects["predicted"][0])
    maps = _alone_maps(tmp, sid, predicted)
    mean = maps.mean(axis=0)
    sd = np.sqrt(((maps - mean) ** 2).sum(axis=0) / 2)
    agreement = ((np.sign(maps) == np.sign(mean)) & (mean != 0)).mean(axis=0)
    scale = np.abs(maps).max()
    sd_img = nib.load(out / "maps" / f"{sid}_dtd_predicted_sd.nii.gz")
    agreement_img = nib.load(out / "maps" / f"{sid}_dtd_predicted_agreement.nii.gz")
    np.testing.assert_allclose(np.asarray(sd_img.dataobj), sd, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(np.asarray(agreement_img.dataobj), agreement, atol=1e-6)
    assert 0 < agreement.min() or (mean == 0).any()
    assert (float(agreement_img.header["cal_min"]), float(agreement_img.header["cal_max"])) == (0, 1)
    assert 0 < float(sd_img.header["cal_min"]) < float(sd_img.header["cal_max"]) <= sd.max() * 1.0001
    source = nib.load(train_run["prep"].table["path"][0])
    for img in (sd_img, agreement_img):
        assert img.shape == RUN_SHAPE
        np.testing.assert_allclose(img.affine, source.affine)
    assert (out / "maps" / f"{sid}_dtd_true_sd.nii.gz").is_file()
    assert (out / "maps" / f"{sid}_dtd_true_agreement.nii.gz").is_file()


def _member_ratings_by_hand(tmp, subjects, labels) -> pd.DataFrame:
    """Regions × members: each member's mean share per region over the subjects, from the maps
    each member wrote alone (of the ensemble's bin)."""
    ratings = {}
    for k in range(3):
        shares = []
        for sid, predicted in zip(subjects["subject_id"], subjects["predicted"]):
            volume = _map(tmp / f"alone{k}" / "maps" / f"{sid}_dtd_class{predicted}.nii.gz")
            shares.append([volume[labels == r].sum() / volume.sum() for r in range(1, 9)])
        ratings[f"member{k}"] = np.mean(shares, axis=0)
    return pd.DataFrame(ratings, index=REGIONS)


@pytest.mark.slow
def test_the_region_table_gives_mean_sd_and_top_k_across_members(explained, atlas):
    tmp, _ = explained
    table = pd.read_csv(tmp / "ensemble" / "regions" / "custom_ensemble.csv")
    assert list(table.columns) == ["method", "region", "mean", "sd", "n_members", "top_k_count",
                                   "top_k_share", "rank_mean"]
    ratings = _member_ratings_by_hand(tmp, _subjects(tmp / "ensemble"), atlas[2])
    region = table["region"][0]  # the ensemble's most relevant region
    row = table.iloc[0]
    assert row["mean"] == pytest.approx(ratings.loc[region].mean(), rel=1e-4)
    assert row["sd"] == pytest.approx(ratings.loc[region].std(ddof=1), rel=1e-3, abs=1e-7)
    in_top = (ratings.rank(ascending=False, method="min") <= TOP_K).loc[region].sum()
    assert row["top_k_count"] == in_top and row["top_k_share"] == pytest.approx(in_top / 3)
    assert sorted(table["region"]) == sorted(REGIONS) and (table["n_members"] == 3).all()


@pytest.mark.slow
def test_the_summary_gives_the_icc_of_the_member_region_tables(explained):
    tmp, summary = explained
    out = tmp / "ensemble"
    members = pd.read_csv(out / "regions" / "custom_members.csv")
    assert list(members.columns[:5]) == ["member", "subject_id", "bin", "method", "region"]
    inside = members[members["region"] != OUTSIDE]  # relevance outside the atlas is no region
    shares = inside.groupby(["region", "member"])["share"].mean().unstack("member")
    tables = {f"member{m}": shares[m] for m in shares.columns}
    reliability = json.loads((out / "explain.json").read_text())["reliability"]
    assert reliability == json.loads(json.dumps(summary["reliability"]))
    assert reliability["icc"].startswith("ICC(3,1)") and reliability["min_icc"] == 0.8
    dtd = reliability["methods"]["dtd"]
    expected = icc(shares, "3,1")
    assert dtd["all_regions"]["icc"] == pytest.approx(expected["icc"], rel=1e-9)
    assert dtd["all_regions"]["ci95"] == pytest.approx(list(expected["ci95"]), rel=1e-9)
    assert dtd["all_regions"]["n_regions"] == 8
    top = shares.mean(axis=1).sort_values(ascending=False, kind="stable").index[:TOP_K]
    assert dtd["top_k_regions"] == list(top)
    expected_top = icc(shares.loc[top], "3,1")
    assert dtd["top_k"]["icc"] == pytest.approx(expected_top["icc"], rel=1e-9)
    assert dtd["top_k"]["ci95"] == pytest.approx(list(expected_top["ci95"]), rel=1e-9)
    assert dtd["meets_min_icc"] == (expected_top["icc"] >= 0.8)
    assert dtd["unreliable_regions"] == reliability_summary(tables, TOP_K)["unreliable"]


@pytest.mark.parametrize("case", ["bins", "train_dir", "one", "twice", "shard"])
def test_runs_that_cannot_form_one_ensemble_are_refused_in_one_line(case, train_run, atlas,
                                                                     tmp_path, capsys):
    from brainage.explain import _main

    run = train_run["run"]
    given, message = {
        "bins": (lambda: [_dirs([run, run_with_bin_edges(run, tmp_path / "other", [10, 50, 70, 101])])],
                 rf"ensemble member {tmp_path / 'other'}: age bins \[10\.0, 50\.0, 70\.0, 101\.0\], "
                 rf"but the first member {run} has \[10\.0, 40\.0, 70\.0, 101\.0\]"),
        "train_dir": (lambda: [_dirs([run, run]), f"train_dir={run}"],
                      r"give train_dirs=\[…\] \(an ensemble\) or train_dir/model_path"),
        "one": (lambda: [_dirs([run])], r"an ensemble needs at least two"),
        "twice": (lambda: [_dirs([run, run])], rf"train_dirs lists the training run {run} twice"),
        "shard": (lambda: [_dirs([run, run]), "shard=0/2"], r"shard=… and merge=… take one"),
    }[case]
    run_dir = tmp_path / "explain"
    status = exit_status(_main, _compose(atlas, *given()), run_dir)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert re.search(message, errors[0]), errors[0]
    assert read_record(run_dir).state == "failed"
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "run.json"]


@pytest.mark.slow
def test_a_regressor_ensembles_mean_dtd_map_sums_to_its_mean_age(atlas, tmp_path):
    from tests.builders import build_regression_run

    regression = build_regression_run(tmp_path / "regression")
    runs = [regression["run"], tmp_path / "member1"]
    shutil.copytree(runs[0], runs[1])  # a member with noisy kernels and the same correction
    model = _load(runs[0])
    rng = np.random.default_rng(1)
    for layer in model.layers:
        layer.set_weights([w * (1 + 0.05 * rng.standard_normal(w.shape)).astype(w.dtype)
                           if w.ndim > 1 else w for w in layer.get_weights()])
    model.save(runs[1] / "model.keras")
    out = tmp_path / "ensemble"
    summary = explain(_compose(atlas, _dirs(runs), "subjects=all"), out)
    subjects = _subjects(out)
    prep = regression["prep"]
    rows = [list(prep.table["subject_id"]).index(s) for s in subjects["subject_id"]]
    ages = np.mean([_logits(run, prep.volumes[rows])[:, 0] for run in runs], axis=0)
    np.testing.assert_allclose(subjects["predicted_age"], ages, rtol=1e-5)
    for sid, age in zip(subjects["subject_id"], ages):
        assert _map(out / "maps" / f"{sid}_dtd_predicted.nii.gz").sum() == \
            pytest.approx(age, rel=1e-5), sid
    assert sorted(p.name for p in (out / "group").glob("*.nii.gz")) == \
        ["dtd_highgap_mean.nii.gz", "dtd_lowgap_mean.nii.gz"]
    assert summary["task"] == "regression" and summary["ensemble"]["n_members"] == 2


@pytest.mark.slow
def test_the_report_shows_the_members_and_the_reliability_of_each_method(explained, members):
    import html

    tmp, _ = explained
    report = (tmp / "ensemble" / "report.html").read_text(encoding="utf-8")
    reliability = json.loads((tmp / "ensemble" / "explain.json").read_text())["reliability"]
    section = report.split("<h2>Ensemble</h2>", 1)[1].split("<h2>", 1)[0]
    assert "3 members: " + ", ".join(f"<code>{html.escape(str(r))}</code>" for r in members) \
        in section
    assert "ensemble.min_icc = 0.8" in section and f"top {TOP_K} regions" in section
    dtd = reliability["methods"]["dtd"]
    headers = re.findall(r"<th>(.*?)</th>", section)
    row = dict(zip(headers, re.findall(r"<td>(.*?)</td>", section)))  # the one method's row
    assert row["method"] == "dtd" and row["regions"] == "8"
    for column, icc_entry in (("all", dtd["all_regions"]), (f"top {TOP_K}", dtd["top_k"])):
        name = "ICC, all regions" if column == "all" else f"ICC, top {TOP_K}"
        assert row[name] == f"{icc_entry['icc']:.3f}"
        low, high = icc_entry["ci95"]
        assert row[f"95 % CI ({column})"] == f"[{low:.3f}, {high:.3f}]"
    assert row["meets ICC ≥ 0.8"] == ("yes" if dtd["meets_min_icc"] else "no")
    assert row[f"top {TOP_K} regions"] == ", ".join(dtd["top_k_regions"])
    unreliable = section.split("<h3>Unreliable regions</h3>", 1)[1]
    for entry in dtd["unreliable_regions"]:
        assert f"<li>{entry['region']}: {html.escape(entry['reason'])}</li>" in unreliable
    if not dtd["unreliable_regions"]:
        assert "<b>dtd</b>: none" in unreliable
    alone = (tmp / "alone0" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Ensemble</h2>" not in alone and "Unreliable regions" not in alone

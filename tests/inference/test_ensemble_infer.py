"""make infer on an ensemble's explain run: the mean maps are tested as one run's maps, and every
region of the explain run's atlas says in how many members the same test holds
(``members_agreeing`` of ``n_members``); one model's run is unaffected.

The fast tests use the tiny synthetic explain run turned into an ensemble's: three members whose
mean is the run's own maps — two with 1.5 times the planted effect, one without it — so the
ensemble's tests equal the single run's and ``Left_Planted`` holds in exactly two members. The
slow test explains a real three-member ensemble and infers on it."""
import json
import shutil

import keras
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from brainage.explain import explain
from brainage.infer import infer
from brainage.inference.region_tests import region_inference
from brainage.neuro.regions import OUTSIDE, region_lookup, region_stats
from tests.builders import AFFINE, compose_stage
from tests.inference.synthetic_runs import METHODS, REGIONS, atlas_labels, compose_infer

N_MEMBERS = 3
PLANTED = 0.75  # build_explain_run's default planted effect in the oldest bin
MEMBER_COLUMNS = ["member", "subject_id", "bin", "method", "region", "n_voxels", "sum", "mean",
                  "density", "share"]


def _planted(bin_: int) -> np.ndarray:
    """The planted term of a subject's dtd map (as synthetic_runs adds it)."""
    term = np.zeros(atlas_labels().shape)
    term[REGIONS[1][1]] = PLANTED * bin_ / 2
    return term


def member_maps(explain_dir, sid: str, bin_: int, method: str) -> list:
    """The three members' maps of one subject: their mean is the run's map; members 0 and 1 carry
    1.5 times the planted effect of dtd, member 2 none; gradient's members differ by ± noise."""
    mean = np.asarray(nib.load(explain_dir / "maps" / f"{sid}_{method}_predicted.nii.gz").dataobj,
                      dtype=np.float64)
    if method == "dtd":
        planted = _planted(bin_)
        return [mean + planted / 2, mean + planted / 2, mean - planted]
    noise = 0.2 * np.random.default_rng(int(sid[-3:])).standard_normal(mean.shape)
    return [mean + noise, mean - noise, mean]


def _make_ensemble(explain_dir) -> None:
    """Turn a copy of the tiny explain run into an ensemble's: members.csv and explain.json."""
    names = pd.DataFrame({"index": list(REGIONS), "name": [n for n, _ in REGIONS.values()]})
    ids, region_names = region_lookup(atlas_labels(), names)
    voxel_ml = abs(np.linalg.det(AFFINE[:3, :3])) / 1000
    subjects = pd.read_csv(explain_dir / "subjects.csv", dtype={"subject_id": str})
    rows = []
    for sid, bin_ in zip(subjects["subject_id"], subjects["bin"]):
        for method in METHODS:
            for m, volume in enumerate(member_maps(explain_dir, sid, int(bin_), method)):
                stats = region_stats(volume, ids, region_names, voxel_ml)
                rows.append(stats.assign(member=m, subject_id=sid, bin=bin_, method=method))
    pd.concat(rows)[MEMBER_COLUMNS].to_csv(explain_dir / "regions" / "custom_members.csv",
                                           index=False)
    summary = json.loads((explain_dir / "explain.json").read_text())
    summary["ensemble"] = {"train_dirs": [summary["train_dir"]] * N_MEMBERS,
                           "n_members": N_MEMBERS}
    (explain_dir / "explain.json").write_text(json.dumps(summary))


@pytest.fixture(scope="module")
def ensemble_explain(tiny_explain, tmp_path_factory):
    """A copy of the tiny explain run as a three-member ensemble's run."""
    run = tmp_path_factory.mktemp("ensemble_explain") / "explain"
    shutil.copytree(tiny_explain["explain"], run)
    _make_ensemble(run)
    return run


FAST = ("voxelwise.enabled=false",)


@pytest.fixture(scope="module")
def inferred(tiny_explain, ensemble_explain, tmp_path_factory):
    """infer on the ensemble's run and on the single run it was made from."""
    tmp = tmp_path_factory.mktemp("ensemble_infer")
    ensemble = infer(compose_infer(tiny_explain, f"explain_dir={ensemble_explain}", *FAST),
                     tmp / "ensemble")
    single = infer(compose_infer(tiny_explain, f"explain_dir={tiny_explain['explain']}", *FAST),
                   tmp / "single")
    return tmp, ensemble, single


def _table(run) -> pd.DataFrame:
    return pd.read_csv(run / "regions" / "custom_inference.csv")


def test_the_mean_maps_are_tested_as_one_runs_maps(inferred):
    tmp, ensemble, single = inferred
    with_members, alone = _table(tmp / "ensemble"), _table(tmp / "single")
    added = ["members_agreeing", "members_agreeing_adj", "n_members"]
    assert [c for c in with_members.columns if c not in alone.columns] == added
    pd.testing.assert_frame_equal(with_members.drop(columns=added), alone)
    assert (with_members["n_members"] == N_MEMBERS).all()
    assert with_members[added].to_numpy().min() >= 0
    assert (with_members[added[:2]].to_numpy() <= N_MEMBERS).all()
    assert ensemble["regions"]["custom"]["dtd"]["fwe_significant"] == \
        single["regions"]["custom"]["dtd"]["fwe_significant"] > 0


def test_members_agreeing_is_recomputed_by_hand_for_the_planted_region(tiny_explain,
                                                                      ensemble_explain, inferred):
    from brainage.inference.analysis import prepare
    from brainage.inference.settings import InferSettings

    tmp, ensemble, _ = inferred
    ctx = prepare(InferSettings.from_cfg(
        compose_infer(tiny_explain, f"explain_dir={ensemble_explain}", *FAST)))
    labels = atlas_labels()
    names = [n for _, (n, _) in sorted(REGIONS.items())]
    gm = ctx.grey.density["custom"][:, sorted(REGIONS)]
    maps = [member_maps(ensemble_explain, sid, int(b), "dtd")
            for sid, b in zip(ctx.subjects["subject_id"], ctx.subjects["bin"])]
    counts = {"": 0, "_adj": 0}
    ensemble_table = _table(tmp / "ensemble")
    row = ensemble_table[(ensemble_table["method"] == "dtd")
                         & (ensemble_table["region"] == "Left_Planted")].iloc[0]
    for m in range(N_MEMBERS):
        # each subject's share of its own member map in each region (measure=share)
        values = np.array([[member[m][labels == k].sum() / member[m].sum()
                            for k in sorted(REGIONS)] for member in maps])
        own = region_inference(values, names, [int((labels == k).sum()) for k in sorted(REGIONS)],
                               ctx.design, ctx.covariates.matrix, gm,
                               ctx.settings.regions.n_perm, ctx.settings.seed)
        own = own.set_index("region").loc["Left_Planted"]
        for suffix in counts:
            counts[suffix] += bool(own[f"p_fwe{suffix}"] <= ctx.alpha_fwe
                                   and np.sign(own[f"t{suffix}"]) == np.sign(row[f"t{suffix}"]))
    assert row["significant"] and row["significant_adj"]
    assert counts == {"": 2, "_adj": 2}  # member 2 has no planted effect
    assert row["members_agreeing"] == counts[""] and row["members_agreeing_adj"] == counts["_adj"]
    assert ensemble["regions"]["custom"]["dtd"]["members_agreeing"]["Left_Planted"] == 2


def test_the_summary_report_and_a_single_run_say_so(inferred):
    tmp, ensemble, single = inferred
    assert ensemble["ensemble"]["n_members"] == N_MEMBERS
    assert ensemble["ensemble"]["counted_atlases"] == ["custom"]
    dtd = ensemble["regions"]["custom"]["dtd"]
    significant = _table(tmp / "ensemble").query("method == 'dtd' and significant")
    assert dtd["members_agreeing"] == dict(zip(significant["region"],
                                               significant["members_agreeing"]))
    assert set(dtd["members_agreeing_adj"]) == set(
        _table(tmp / "ensemble").query("method == 'dtd' and significant_adj")["region"])
    report = (tmp / "ensemble" / "report.html").read_text()
    assert "members agreeing on each significant region" in report
    assert "Left_Planted 2/3" in report and "<th>members agreeing</th>" in report
    assert "ensemble" not in single and "members_agreeing" not in single["regions"]["custom"]["dtd"]
    assert "members agreeing" not in (tmp / "single" / "report.html").read_text()


def test_the_command_line_names_the_members_agreeing(tiny_explain, ensemble_explain, tmp_path,
                                                    capsys):
    from brainage.infer import _main

    _main(compose_infer(tiny_explain, f"explain_dir={ensemble_explain}", *FAST, "methods=[dtd]"),
          run_dir=tmp_path / "run")
    assert "(members agreeing: Left_Planted 2/3" in capsys.readouterr().out


def test_an_atlas_summed_from_the_maps_gets_no_count(tiny_explain, ensemble_explain, tmp_path):
    for suffix in (".nii.gz", ".csv"):
        shutil.copy(tiny_explain["base"] / f"atlas{suffix}", tmp_path / f"mine{suffix}")
    summary = infer(compose_infer(tiny_explain, f"explain_dir={ensemble_explain}", *FAST,
                                  "methods=[dtd]", "regions.gm_adjust=false",
                                  f"regions.atlases=[explain,{tmp_path / 'mine.nii.gz'}]"),
                    tmp_path / "run")
    explained = _table(tmp_path / "run")
    assert "members_agreeing" in explained and "members_agreeing_adj" not in explained
    assert "members_agreeing" not in pd.read_csv(tmp_path / "run" / "regions" / "mine_inference.csv")
    assert list(summary["ensemble"]["not_counted"]) == ["mine"]


# --------------------------------------------------------------------------- a real ensemble

def _perturbed_member(run, dest, seed: int):
    """A copy of the training run ``run`` with seeded noise on its kernels: another member."""
    shutil.copytree(run, dest)
    model = keras.saving.load_model(run / "model.keras", compile=False)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([w * (1 + 0.1 * rng.standard_normal(w.shape)).astype(w.dtype)
                           if w.ndim > 1 else w for w in layer.get_weights()])
    model.save(dest / "model.keras")
    return dest


@pytest.mark.slow
def test_infer_on_a_real_ensembles_explain_run(train_run, tmp_path):
    members = [train_run["run"]] + [_perturbed_member(train_run["run"], tmp_path / f"m{k}", k)
                                    for k in (1, 2)]
    explain_dir = tmp_path / "explain"
    cfg = compose_stage("explain", "explainer=dtd", "atlas=custom",
                        f"atlas.path={train_run['atlas']}", f"atlas.labels={train_run['labels']}",
                        "progress=false", "figures.subjects=1", "group.correct_only=false",
                        "subjects=all", "train_dirs=[" + ",".join(map(str, members)) + "]")
    explain(cfg, explain_dir)
    (explain_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, explain_dir / ".hydra" / "config.yaml")  # what Hydra writes beside a run
    summary = infer(compose_stage("infer", f"explain_dir={explain_dir}",
                                  f"outputs_dir={tmp_path / 'none'}", "voxelwise.n_perm=200",
                                  "regions.n_perm=1000", "covariates=[]"), tmp_path / "infer")
    table = _table_of(tmp_path / "infer", "custom")
    assert (table["n_members"] == N_MEMBERS).all()
    assert table["members_agreeing"].between(0, N_MEMBERS).all()
    assert summary["ensemble"]["train_dirs"] == [str(m) for m in members]
    # the counts, recomputed from the members' region rows of the explain run
    from brainage.inference.analysis import prepare
    from brainage.inference.settings import InferSettings

    ctx = prepare(InferSettings.from_cfg(compose_stage(
        "infer", f"explain_dir={explain_dir}", "regions.n_perm=1000", "covariates=[]",
        "voxelwise.enabled=false")))
    rows = pd.read_csv(explain_dir / "regions" / "custom_members.csv", dtype={"subject_id": str})
    rows = rows[(rows["method"] == "dtd") & (rows["region"] != OUTSIDE)]
    names = sorted(rows["region"].unique())
    gm = ctx.grey.density["custom"][:, [ctx.labels[0].names.index(n) for n in names]]
    row = table[table["region"] == names[0]].iloc[0]
    assert row["significant"]  # Left_Core: the ageing region
    agreeing = 0
    for m in range(N_MEMBERS):
        wide = rows[rows["member"] == m].pivot(index="subject_id", columns="region", values="share")
        own = region_inference(wide.loc[list(ctx.subjects["subject_id"]), names].to_numpy(), names,
                               [1] * len(names), ctx.design, ctx.covariates.matrix, gm, 1000, 0)
        own = own.set_index("region").loc[names[0]]
        agreeing += bool(own["p_fwe"] <= ctx.alpha_fwe and np.sign(own["t"]) == np.sign(row["t"]))
    assert row["members_agreeing"] == agreeing


def _table_of(run, atlas) -> pd.DataFrame:
    return pd.read_csv(run / "regions" / f"{atlas}_inference.csv")

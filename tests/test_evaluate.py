"""The evaluate stage end to end on the tiny trained run; the metrics are tested in tests/faithfulness/."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from tests.builders import REPO, RUN_SHAPE, write_gm


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory):
    """A ground truth for the tiny cohort, in a folder of its own (the session's cohort stays
    untouched): its "ageing region" is the cube [3:8]³ of the source grid."""
    folder = tmp_path_factory.mktemp("ground_truth")
    effect = np.zeros(RUN_SHAPE, np.float32)
    effect[3:8, 3:8, 3:8] = -0.4
    write_gm(folder / "age_effect.nii.gz", effect)
    labels = np.zeros(RUN_SHAPE, np.int16)
    labels[3:8, 3:8, 3:8] = 1
    labels[8:10, 1:4, 1:4] = 2
    write_gm(folder / "regions.nii.gz", labels)
    pd.DataFrame({"name": ["Core", "Visual"], "index": [1, 2], "role": ["ageing", "control"],
                  "factor": [1.0, 0.0]}).to_csv(folder / "regions.csv", index=False)
    return folder


def compose_evaluate(train_run, *overrides, methods="dtd,gradient_x_input,gradcam"):
    gradcam = ["explainer.gradcam.layer=block1_conv_b"] if "gradcam" in methods else []
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("evaluate", overrides=[
            f"train_dir={train_run['run']}", "progress=false", f"explainer=[{methods}]", *gradcam,
            "subjects=all", "subjects_limit=6", "batch_size=4", "perturbation.patch=2",
            "perturbation.steps=4", "perturbation.patches_per_step=3", "randomisation.subjects=2",
            "localisation.brain_threshold=0.05", "localisation.threshold=0.1", *overrides])


@pytest.fixture(scope="module")
def evaluated(train_run, ground_truth, tmp_path_factory):
    from brainage.evaluate import evaluate

    out = tmp_path_factory.mktemp("evaluate_run")
    summary = evaluate(compose_evaluate(train_run, f"localisation.ground_truth={ground_truth}"), out)
    return out, summary


def test_stage_writes_every_output(evaluated):
    out, summary = evaluated
    for name in ("perturbation.csv", "aopc.csv", "aopc_subjects.csv", "randomisation.csv",
                 "randomisation_subjects.csv", "localisation.csv", "localisation_subjects.csv",
                 "subjects.csv", "verdict.md", "evaluate.json", "figures/perturbation.png",
                 "figures/randomisation.png", "figures/localisation.png", "gradcam_layers.csv",
                 "figures/methods.png"):
        assert (out / name).is_file(), name
    assert not (out / ".incomplete").exists()
    assert summary["methods"] == ["dtd", "gradient_x_input", "gradcam", "random"]
    assert json.loads((out / "evaluate.json").read_text())["n_subjects"] == 6


def test_stage_tables_are_consistent(evaluated):
    out, summary = evaluated
    subjects = pd.read_csv(out / "subjects.csv")
    assert len(subjects) == 6 and sorted(subjects["bin"].value_counts()) == [2, 2, 2]
    curves = pd.read_csv(out / "perturbation.csv")
    assert list(curves.columns) == ["method", "step", "fraction_removed", "mean_drop", "se_drop",
                                    "mean_logit", "n"]
    assert len(curves) == 4 * 5 and (curves[curves.step == 0]["mean_drop"] == 0).all()
    aopc = pd.read_csv(out / "aopc.csv")
    assert list(aopc["rank"]) == [1, 2, 3, 4] and aopc["aopc"].is_monotonic_decreasing
    per_subject = pd.read_csv(out / "aopc_subjects.csv")
    for method, g in per_subject.groupby("method"):
        assert aopc.set_index("method").loc[method, "aopc"] == pytest.approx(g["aopc"].mean())
    rand = pd.read_csv(out / "randomisation.csv")
    assert set(rand["method"]) == {"dtd", "gradient_x_input", "gradcam"}  # no random map
    assert list(rand[rand.method == "dtd"]["layer"]) == ["logits", "dense1", "block1"]
    assert (rand["n"] == 2).all()
    loc = pd.read_csv(out / "localisation.csv", dtype={"bin": str})
    assert set(loc["bin"]) == {"all", "0", "1", "2"} and set(loc["method"]) == set(summary["methods"])
    assert {"mass_ratio", "mass_ratio_se", "auc", "auc_se", "control_ratio", "mask_share"} <= set(loc)
    random_row = loc[(loc.method == "random") & (loc.bin == "all")].iloc[0]
    assert 0.3 < random_row["auc"] < 0.7  # the floor is near chance


def test_verdict_names_ranking_checks_and_localisation(evaluated):
    out, summary = evaluated
    text = (out / "verdict.md").read_text()
    for heading in ("Region perturbation", "cascading randomisation", "Localisation", "Summary"):
        assert heading in text
    for method in summary["methods"]:
        assert method in text
    assert "Most faithful by AOPC" in text and "Failed the randomisation check" in text
    assert "Grad-CAM across layers" in text and "block1_conv_b" in text


def test_gradcam_layer_profile_covers_every_block(evaluated):
    out, _ = evaluated
    layers = pd.read_csv(out / "gradcam_layers.csv")
    assert list(layers["layer"]) == ["block1_conv_b"]  # the tiny model has one block
    assert {"roughness", "focus", "between_subject_spearman"} <= set(layers.columns)
    assert (layers["n_subjects"] == 6).all()


def test_real_data_without_ground_truth_skips_localisation(train_run, tmp_path):
    from brainage.evaluate import evaluate

    cohort = Path(train_run["prep"].table["path"][0]).parents[1]
    assert not (cohort / "ground_truth").exists()  # the default, <data.root>/ground_truth
    cfg = compose_evaluate(train_run, "randomisation.enabled=false", "perturbation.enabled=false",
                           methods="gradient_x_input")
    summary = evaluate(cfg, tmp_path / "out")
    assert not (tmp_path / "out" / "localisation.csv").exists()
    assert "no ground truth" in summary["localisation"]["ground_truth_note"]
    assert "Skipped: no ground truth" in (tmp_path / "out" / "verdict.md").read_text()


@pytest.mark.parametrize("override, message", [
    ("train_dir=/nonexistent/run", "train_dir=/nonexistent/run does not exist"),
    ("perturbation.baseline=noise", "perturbation.baseline='noise'; expected one of"),
    ("perturbation.steps=100", r"100 steps × 3 patches = 300 patches, but the \(9, 10, 11\) crop"),
    ("randomisation.flag_after=block7", "randomisation.flag_after='block7' is not a cascade step"),
    ("localisation.mask=regions", "localisation.mask=regions needs localisation.regions"),
    ("explainer.gradcam.layer=nope", "explainer gradcam: gradcam: model has no layer 'nope'"),
    ("target=all", "target='all'; expected predicted or true"),
    ("localisation.ground_truth=/nonexistent/gt", "ground_truth=/nonexistent/gt holds no age_effect"),
    ("+explainer.random.name=gradient", "explainer name 'random' is reserved for the random-map floor"),
])
def test_bad_requests_give_clear_errors(train_run, tmp_path, override, message):
    from brainage.errors import BrainageError, EvaluateError
    from brainage.evaluate import evaluate

    with pytest.raises(BrainageError, match=message) as info:
        evaluate(compose_evaluate(train_run, override), tmp_path)
    assert not (tmp_path / "verdict.md").exists() and not (tmp_path / ".incomplete").exists()
    if not override.startswith("train_dir"):
        assert isinstance(info.value, EvaluateError)


def test_refuses_to_overwrite_an_earlier_run(train_run, tmp_path):
    from brainage.errors import RunDirError
    from brainage.evaluate import evaluate

    (tmp_path / "verdict.md").write_text("earlier")
    with pytest.raises(RunDirError):
        evaluate(compose_evaluate(train_run), tmp_path)
    assert (tmp_path / "verdict.md").read_text() == "earlier"


@pytest.mark.slow
def test_cli_reports_errors_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "brainage.evaluate", "train_dir=/nonexistent",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 2
    assert "error: train_dir=/nonexistent does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr

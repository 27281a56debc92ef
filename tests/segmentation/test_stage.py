"""The seed_unet stage end to end on a tiny synthetic cohort, its config, and its errors."""
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from brainage.errors import SegmentationError
from brainage.seed_unet import report_lines, run_unet
from brainage.segmentation.settings import UNetSettings
from tests.builders import REPO, compose_stage

from .conftest import CROP, compose_unet


def test_the_default_config_is_the_quick_cohorts_hippocampi():
    cfg = compose_stage("unet")
    assert cfg.data.root == "data/synthetic/balanced_n240_seed0"
    settings = UNetSettings.from_cfg(cfg)
    assert settings.labels == ("Left_Hippocampus", "Right_Hippocampus") and settings.warp
    assert settings.pools == 2 and all(s % 4 == 0 for s in settings.crop_shape)
    assert {"guided_backprop", "dtd"} <= set(settings.methods)


@pytest.mark.slow
def test_a_tiny_run_writes_every_output(hippocampus_cohort, tmp_path):
    cfg = compose_unet(hippocampus_cohort, tmp_path / "cache", "threshold=-1.0e9")  # every voxel: a mask
    run = tmp_path / "run"
    run.mkdir()
    summary = run_unet(cfg, run)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["labels_warped"] and saved["n_subjects"] == 12 and saved["box"]["crop_shape"] == CROP
    test = saved["scores"]["test"]
    assert test["dice"]["n"] == 3 and 0 <= test["dice"]["min"] <= test["dice"]["max"] <= 1
    assert 0.5 < test["atlas_prior_dice"]["median"] < 1.0
    assert set(saved["methods"]) == {"guided_backprop", "dtd", "lrp_composite", "gradient_x_input"}
    # Every voxel is explained, negative logits too, which z+ cannot pass on: the books (maps plus what
    # each layer absorbed) still balance; DTD on a positive mask conserves (test_explanations).
    assert saved["methods"]["dtd"]["books_rel_error_max"] <= 1e-5
    assert not saved["methods"]["guided_backprop"]["layer_wise"]
    assert saved["methods"]["lrp_composite"]["layer_wise"]
    assert (run / "model.keras").is_file() and (run / "figures" / "unet_relevance.png").stat().st_size > 10_000
    subjects = saved["explained_subjects"]
    assert len(subjects) == 2
    expected = {f"{s}_{what}.nii.gz" for s in subjects
                for what in ("label", "prediction", *saved["methods"])}
    assert set(saved["maps"]) == expected == {p.name for p in (run / "maps").iterdir()}
    img = nib.load(str(run / "maps" / f"{subjects[0]}_dtd.nii.gz"))
    gm = nib.load(str(hippocampus_cohort / "gm" / f"{subjects[0]}_gm.nii.gz"))
    np.testing.assert_allclose(img.affine, gm.affine)
    assert img.shape == gm.shape and img.header["descrip"].tobytes().startswith(b"dtd target=")
    label_img = nib.load(str(run / "maps" / f"{subjects[0]}_label.nii.gz"))
    label = np.asarray(label_img.dataobj)
    assert label.sum() > 0 and set(np.unique(label)) == {0.0, 1.0}
    assert label_img.header["cal_max"] > label_img.header["cal_min"] > 0
    lines = report_lines(saved, run)
    assert "test Dice median" in lines[0] and lines[-1].endswith(str(run))


@pytest.mark.parametrize("override, message", [
    ("crop.shape=[13,14,12]", r"crop.shape=\[13, 14, 12\] must be multiples of 4"),
    ("network.filters=[4]", r"network.filters=\[4\] needs at least two levels"),
    ("network.pool=min", r"network.pool must be one of \['average', 'max'\], got 'min'"),
    ("structure.warp=maybe", r"structure.warp must be true or false, got 'maybe'"),
    ("fit.epochs=0", r"fit.epochs must be an integer >= 1, got 0"),
    ("fit.learning_rate=-1", r"fit.learning_rate must be a positive number"),
    ("+explain.methods.gc={name:gradcam}", r"explain.methods.gc.name must be one of .* got 'gradcam'"),
    ("display.low_percentile=99.95", r"display.low_percentile=99.95 and high_percentile=99.9"),
])
def test_a_bad_value_names_its_key(override, message):
    with pytest.raises(SegmentationError, match=message):
        UNetSettings.from_cfg(compose_stage("unet", override))


@pytest.mark.slow
def test_cli_rejects_a_bad_value_with_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "brainage.seed_unet", "crop.shape=[13,14,12]",
                           f"hydra.run.dir={tmp_path}"], env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: unet: crop.shape=[13, 14, 12] must be multiples of 4 "
                                   "(2**2 poolings of network.filters=[4, 8, 16])")
    assert not (tmp_path / "figures").exists() and not (tmp_path / "metrics.json").exists()

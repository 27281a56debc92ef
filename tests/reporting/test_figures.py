"""Figures leave matplotlib as they found it; the verdict says what was skipped and why."""
import subprocess
import sys

import pandas as pd
import pytest

from brainage.reporting.verdict import fmt, verdict
from tests.builders import REPO

SCRIPT = """
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from brainage.reporting.evaluate_figures import methods_figure
from brainage.reporting.explain_figures import conservation_chart, subject_overlay
import pandas as pd
affine = np.diag([2.0, 2.5, 3.0, 1.0])
volume = np.random.default_rng(0).uniform(size=(7, 8, 9)).astype(np.float32)
img = nib.Nifti1Image(volume, affine)
img.header["cal_max"] = 1.0
subject_overlay(img, img, "sub", "{out}/overlay.png")
conservation_chart(pd.DataFrame({{"method": ["a", "a"], "rel_error": [1e-6, 1e-7]}}),
                   "{out}/conservation.png")
methods_figure(volume[..., None], {{"a": volume[..., None]}}, "t", "{out}/methods.png")
print(matplotlib.get_backend(), plt.get_fignums())
"""


@pytest.mark.slow
def test_figures_touch_no_pyplot_state(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(out=tmp_path)], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[-2] == "svg []"  # the caller's backend, no figure left open
    assert all((tmp_path / f).stat().st_size > 1000
               for f in ("overlay.png", "conservation.png", "methods.png"))


def test_verdict_says_which_checks_were_skipped():
    summary = {"n_subjects": 3, "target": ["predicted"], "methods": ["dtd", "random"],
               "perturbation": {}, "randomisation": {}, "flagged": {},
               "localisation": {"ground_truth_note": "no ground truth (x is missing)"}}
    card = pd.DataFrame({"method": ["dtd"], "target": ["predicted"], "verdict": ["unmeasured"],
                         "goals_met": [0]})
    text = verdict(summary, {}, card, "No default chosen.", "outputs/train/run", floor="random")
    assert "Training run `outputs/train/run`; 3 subjects; target modes predicted; methods: dtd, random" in text
    assert "Skipped (perturbation.enabled=false)." in text
    assert "Skipped (randomisation.enabled=false)." in text
    assert "Skipped: no ground truth (x is missing)." in text
    assert "Grad-CAM across layers" not in text and text.endswith("## Summary\n\n")


def test_fmt():
    assert fmt(0.12345, 0.01) == "0.123 ± 0.010" and fmt(1.5) == "1.500"
    assert fmt(float("nan")) == "–" and fmt(None) == "–" and fmt(2.0, float("nan")) == "2.000"

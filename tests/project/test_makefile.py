"""`make <target> key=value ...` passes Hydra overrides straight through, in order."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("target, module", [
    ("train", "brainage.train"), ("explain", "brainage.explain"), ("evaluate", "brainage.evaluate"),
    ("infer", "brainage.infer"), ("bench", "brainage.bench"), ("digits", "brainage.seed_digits"), ("unet", "brainage.seed_unet"),
    ("cohort", "brainage.cohort")])
def test_overrides_pass_through_make(target, module, tmp_path):
    stamp = tmp_path / ".installed-stamp"
    stamp.touch()
    out = subprocess.run(
        ["make", "-s", "-n", "-C", str(ROOT), target, f"STAMP={stamp}", "trainer.epochs=2",
         "data.n_subjects=60", "explainer=[dtd,gradcam]"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()
    assert out[-1] == (f".venv/bin/python -m {module} 'trainer.epochs=2' 'data.n_subjects=60' "
                       "'explainer=[dtd,gradcam]'")

"""A tiny BIDS raw cohort cut from a real IXI scan, and the preprocess config composed for it."""
from __future__ import annotations

import pytest

from brainage.preprocessing.settings import PreprocessSettings
from tests.builders import compose_stage
from tests.preprocessing.fake_steps import IXI, write_raw_cohort

IDS = [f"sub-{i:02d}" for i in range(6)]

if not IXI.is_dir():  # CI runs beside /work/shared; elsewhere these tests have no real scan
    pytest.skip(f"the IXI scans are not at {IXI}", allow_module_level=True)


@pytest.fixture
def raw(tmp_path):
    """Six subjects, BIDS raw, each the same downsampled IXI scan (6 mm)."""
    return write_raw_cohort(tmp_path / "raw", IDS)


@pytest.fixture
def configure(tmp_path):
    """``configure(root, *overrides)`` -> the preprocess config (derivatives in tmp_path, one worker,
    no bar) composed as the stage's command line would."""
    def compose(root, *overrides):
        return compose_stage("preprocess", f"data.root={root}", f"derivatives_dir={tmp_path / 'derivatives'}",
                             "workers=1", "progress=false", *overrides)
    return compose


@pytest.fixture
def settings_for(configure):
    """``settings_for(root, *overrides)`` -> PreprocessSettings."""
    return lambda root, *overrides: PreprocessSettings.from_cfg(configure(root, *overrides))

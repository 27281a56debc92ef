"""The preprocess stage on the command line: its run directory, its summary line, its refusals."""
import json

import pytest

from brainage import preprocess as stage
from brainage.data.derivative import derivative_dir
from brainage.preprocessing import steps
from tests.builders import compose_stage
from tests.preprocessing.fake_steps import fake_preprocess


@pytest.fixture(autouse=True)
def stand_in_steps(monkeypatch):
    monkeypatch.setattr(steps, "preprocess_t1", fake_preprocess)


def test_a_run_writes_its_summary_and_says_what_next(raw, configure, tmp_path, capsys):
    stage._main(configure(raw), run_dir=tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "preprocess.json").read_text())
    derivative = derivative_dir(raw, tmp_path / "derivatives")
    assert summary["n_ok"] == 6 and summary["derivative"] == str(derivative)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["state"] == "finished"
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("6 of 6 subjects ready (6 preprocessed, 0 already done, 0 excluded, 0 flagged) in ")
    assert line.endswith(f"; next: make train data=t1 data.root={raw} data.derivatives_dir={tmp_path / 'derivatives'}")


def test_no_root_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        stage._main(compose_stage("preprocess"), run_dir=tmp_path / "run")
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == ("error: data.root is required: the raw T1 folder (BIDS raw: "
                                               "sub-*/anat/*_T1w.nii.gz and participants.tsv), e.g. make "
                                               "preprocess data.root=../shared/data/ixi")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["state"] == "failed"


def test_the_ixi_root_is_pointed_at_its_preset():
    ixi = stage.next_command("../shared/data/ixi", "data/derivatives")
    assert ixi.startswith("make train data=ixi, or an experiment on it: ") and "experiment=ixi_regression" in ixi
    assert stage.next_command("/data/raw", "data/derivatives") == "make train data=t1 data.root=/data/raw"

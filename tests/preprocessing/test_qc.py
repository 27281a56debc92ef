"""QC: robust z-scores, flags, the QC table, the pictures and the report (flagged subjects first)."""
import numpy as np
import pandas as pd

from brainage.data.derivative import derivative_dir, qc_picture
from brainage.preprocessing.pipeline import preprocess_cohort
from brainage.preprocessing.qc import robust_z, score_subjects
from tests.preprocessing.fake_steps import fake_preprocess, write_raw_cohort


def test_robust_z_is_not_masked_by_the_outlier_itself():
    z = robust_z([10, 11, 9, 10, 12, 8, 100])
    assert z[-1] > 30 and np.abs(z[:-1]).max() < 2
    assert (robust_z([5, 5, 5, 5, 5]) == 0).all() and (robust_z([1, 2, np.nan]) == [0, 0, 0])[:2].all()


def test_low_similarity_is_flagged_high_is_not():
    rows = pd.DataFrame({"status": ["done"] * 6 + ["excluded"], "similarity": [0.9, 0.91, 0.89, 0.9, 0.5, 0.99, np.nan],
                         "tiv_ml": [1500.0] * 6 + [np.nan], "gm_ml": [700.0] * 6 + [np.nan]})
    scored = score_subjects(rows, z_threshold=3.5)
    assert list(scored["status"]) == ["ok", "ok", "ok", "ok", "flagged", "ok", "excluded"]
    assert scored["flags"][4].startswith("similarity z=-") and scored["flags"][5] == ""


def test_the_derivative_gets_a_qc_table_pictures_and_a_report_flagged_first(tmp_path, settings_for):
    ids = ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05", "sub-big", "sub-bad"]
    root = write_raw_cohort(tmp_path / "raw", ids)
    work = tmp_path / "run"
    work.mkdir()
    summary = preprocess_cohort(settings_for(root, "on_bad_subject=exclude"), work, preprocess=fake_preprocess)
    derivative = derivative_dir(root, tmp_path / "derivatives")
    assert summary["flagged"].keys() == {"sub-big"} and summary["flagged"]["sub-big"].startswith("tiv_ml z=")
    qc = pd.read_csv(derivative / "qc.tsv", sep="\t")
    assert list(qc["status"]) == ["ok"] * 5 + ["flagged", "excluded"]
    assert {"similarity", "tiv_ml", "gm_fraction", "z_similarity", "z_tiv_ml", "z_gm_fraction", "reason"} <= set(qc.columns)
    assert qc_picture(derivative, "sub-01").stat().st_size > 1000 and not qc_picture(derivative, "sub-bad").exists()
    participants = pd.read_csv(derivative / "participants.tsv", sep="\t")
    assert list(participants["qc"]) == list(qc["status"]) and participants["qc_flags"].iloc[-1].startswith("sub-bad:")
    report = (derivative / "report.html").read_text()
    assert report.index("sub-big") < report.index("sub-bad") < report.index("sub-01")
    assert "<b>5</b> ok, <b>1</b> flagged, <b>1</b> excluded" in report and "src='qc/sub-big.png'" in report

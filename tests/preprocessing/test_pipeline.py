"""The cohort preprocessed with stand-in steps: derivative layout, resume, bad subjects, shards."""
import json
import os

import nibabel as nib
import pandas as pd
import pytest

from brainage.data.derivative import KINDS, WORK_DIR, derivative_dir, is_complete, qc_picture, subject_file
from brainage.errors import DataError
from brainage.preprocessing.pipeline import preprocess_cohort
from brainage.preprocessing.steps import PreprocessError
from tests.preprocessing.conftest import IDS
from tests.preprocessing.fake_steps import fake_preprocess, write_raw_cohort


def run(settings, tmp_path, name="run"):
    work = tmp_path / name
    work.mkdir()
    return preprocess_cohort(settings, work, preprocess=fake_preprocess)


def snapshot(root):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_every_subject_gets_its_files_and_the_derivative_its_tables(raw, settings_for, tmp_path):
    settings = settings_for(raw)
    summary = run(settings, tmp_path)
    derivative = derivative_dir(raw, tmp_path / "derivatives")
    assert summary["derivative"] == str(derivative) and summary["n_preprocessed"] == 6
    assert all(is_complete(derivative, sid) for sid in IDS)
    assert not (derivative / WORK_DIR).exists()
    record = json.loads(subject_file(derivative, "sub-03", "record").read_text())
    assert set(record["volumes_ml"]) == {"tiv_ml", "gm_ml", "wm_ml", "csf_ml"} and 0.8 < record["similarity"] < 1
    assert {"n4", "registration", "write", "qc_picture", "total"} <= set(record["seconds"])
    assert record["steps"]["syn_metric"] == settings.steps.syn_metric and record["files"] == list(KINDS)
    assert nib.load(str(subject_file(derivative, "sub-03", "modulated"))).shape == (7, 8, 9)
    description = json.loads((derivative / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "brainage-preprocess"
    assert "Atropos" in description["GeneratedBy"][0]["Description"] and description["StepSettings"]["seed"] == 1
    participants = pd.read_csv(derivative / "participants.tsv", sep="\t")
    assert list(participants.columns) == ["participant_id", "age", "sex", "similarity", "tiv_ml", "gm_ml",
                                          "wm_ml", "csf_ml", "qc", "qc_flags"]
    assert list(participants["participant_id"]) == IDS and (participants["qc"] == "ok").all()


def test_the_raw_root_is_left_untouched(raw, settings_for, tmp_path):
    before = snapshot(raw)
    os.chmod(raw, 0o555)  # read-only, as the shared data set is
    try:
        run(settings_for(raw), tmp_path)
    finally:
        os.chmod(raw, 0o755)
    assert snapshot(raw) == before


def test_a_rerun_skips_finished_subjects_and_redoes_a_half_written_one(raw, settings_for, tmp_path):
    run(settings_for(raw), tmp_path, "first")
    derivative = derivative_dir(raw, tmp_path / "derivatives")
    subject_file(derivative, "sub-02", "gm_native").unlink()  # no longer complete
    stale = derivative / WORK_DIR / "sub-04" / "anat" / "sub-04_half.nii.gz"  # what a killed run leaves
    stale.parent.mkdir(parents=True)
    stale.write_text("half")
    kept = subject_file(derivative, "sub-00", "modulated").stat().st_mtime_ns
    summary = run(settings_for(raw), tmp_path, "second")
    assert summary["n_skipped"] == 5 and summary["n_preprocessed"] == 1
    assert is_complete(derivative, "sub-02") and not (derivative / WORK_DIR).exists()
    assert subject_file(derivative, "sub-00", "modulated").stat().st_mtime_ns == kept


def test_other_step_settings_are_refused_not_mixed(raw, settings_for, tmp_path):
    run(settings_for(raw), tmp_path, "first")
    with pytest.raises(DataError, match=r"other step settings \(sub-00: steps.n4_shrink=4\).*derivatives_dir="):
        run(settings_for(raw, "steps.n4_shrink=2"), tmp_path, "second")


def bad_cohort(tmp_path):
    """Six subjects: one step failure, one unforeseen crash, one 4D, one unreadable, one without T1."""
    ids = ["sub-ok1", "sub-bad", "sub-crash", "sub-fourd", "sub-broken", "sub-ok2", "sub-none"]
    root = write_raw_cohort(tmp_path / "raw", ids[:-1], ages=list(range(20, 26)))
    pd.DataFrame({"participant_id": ids, "age": range(20, 27)}).to_csv(root / "participants.tsv", sep="\t", index=False)
    t1 = root / "sub-fourd" / "anat" / "sub-fourd_T1w.nii.gz"
    img = nib.load(str(t1))
    nib.save(nib.Nifti1Image(img.get_fdata()[..., None].repeat(2, axis=3), img.affine), str(t1))
    (root / "sub-broken" / "anat" / "sub-broken_T1w.nii.gz").write_bytes(b"not a nifti")
    return root


def test_exclude_names_every_bad_subject_and_keeps_the_others(tmp_path, settings_for):
    root = bad_cohort(tmp_path)
    summary = run(settings_for(root, "on_bad_subject=exclude"), tmp_path)
    reasons = summary["excluded"]
    assert sorted(reasons) == ["sub-bad", "sub-broken", "sub-crash", "sub-fourd", "sub-none"]
    assert reasons["sub-bad"] == "sub-bad: registration to the template failed (similarity 0.12)"
    assert reasons["sub-crash"] == "sub-crash: RuntimeError: itk::ERROR: the stand-in broke"
    assert "has shape (40, 40, 30, 2); expected a 3D image" in reasons["sub-fourd"]
    assert reasons["sub-broken"].startswith("sub-broken: cannot read") and "as NIfTI" in reasons["sub-broken"]
    assert reasons["sub-none"].startswith("sub-none: no T1 image matches")
    derivative = derivative_dir(root, tmp_path / "derivatives")
    assert is_complete(derivative, "sub-ok1") and is_complete(derivative, "sub-ok2")
    assert not any(p.name.startswith("sub-bad") for p in derivative.rglob("*"))
    qc = pd.read_csv(derivative / "qc.tsv", sep="\t")
    assert list(qc["status"]) == ["ok", "excluded", "excluded", "excluded", "excluded", "ok", "excluded"]
    excluded = pd.read_csv(tmp_path / "run" / "exclusions.csv")
    assert list(excluded.columns) == ["subject_id", "path", "reason"] and len(excluded) == 5


def test_fail_stops_at_the_first_bad_subject_and_keeps_the_done_ones(tmp_path, settings_for):
    root = bad_cohort(tmp_path)
    with pytest.raises(PreprocessError, match=r"^sub-none: no T1 image matches .*on_bad_subject=exclude"):
        run(settings_for(root), tmp_path, "first")  # found before any work starts
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    table[table["participant_id"] != "sub-none"].to_csv(root / "participants.tsv", sep="\t", index=False)
    with pytest.raises(PreprocessError, match=r"^sub-bad: registration to the template failed .*subjects "
                                              r"finished are kept"):
        run(settings_for(root), tmp_path, "second")
    derivative = derivative_dir(root, tmp_path / "derivatives")
    assert is_complete(derivative, "sub-ok1") and not is_complete(derivative, "sub-ok2")
    assert not (derivative / "qc.tsv").exists()


def test_every_subject_excluded_fails_with_the_tables_written(tmp_path, settings_for):
    root = write_raw_cohort(tmp_path / "raw", ["sub-bad1", "sub-bad2"])
    with pytest.raises(PreprocessError, match="every subject was excluded"):
        run(settings_for(root, "on_bad_subject=exclude"), tmp_path)
    assert (derivative_dir(root, tmp_path / "derivatives") / "qc.tsv").exists()


def test_shards_split_the_subjects_and_write_no_tables(raw, settings_for, tmp_path):
    derivative = derivative_dir(raw, tmp_path / "derivatives")
    first = run(settings_for(raw, "shard=0/2"), tmp_path, "s0")
    assert first["shard"] == "0/2" and first["n_subjects"] == 3 and not (derivative / "qc.tsv").exists()
    assert [sid for sid in IDS if is_complete(derivative, sid)] == ["sub-00", "sub-02", "sub-04"]
    run(settings_for(raw, "shard=1/2"), tmp_path, "s1")
    final = run(settings_for(raw), tmp_path, "all")
    assert final["n_skipped"] == 6 and final["n_preprocessed"] == 0 and (derivative / "report.html").exists()


def test_killed_while_writing_leaves_no_part_of_the_subject(raw, settings_for, tmp_path, monkeypatch):
    from brainage.preprocessing import subject

    def interrupted(result, work, subject_id):  # Ctrl-C after the first file
        work.mkdir(parents=True)
        nib.save(result.gm_modulated, str(work / "half.nii.gz"))
        raise KeyboardInterrupt

    monkeypatch.setattr(subject, "_write_images", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(settings_for(raw), tmp_path)
    derivative = derivative_dir(raw, tmp_path / "derivatives")
    assert not any((derivative / WORK_DIR).rglob("*.nii.gz"))
    assert not any(subject_file(derivative, sid, kind).exists() for sid in IDS for kind in KINDS)
    assert not any(qc_picture(derivative, sid).exists() for sid in IDS)

"""The raw cohort: BIDS raw and a folder with a table; each subject's one T1 image or its problem."""
import pandas as pd
import pytest

from brainage.errors import DataError
from brainage.preprocessing.bids import check_outside, read_raw_cohort
from tests.preprocessing.conftest import IDS
from tests.preprocessing.fake_steps import small_ixi_scan

BIDS_GLOB = "{root}/{subject_id}/anat/{subject_id}*_T1w.nii*"


def test_bids_raw_finds_each_subjects_t1_in_table_order(raw):
    cohort = read_raw_cohort(raw, raw / "participants.tsv", BIDS_GLOB)
    assert cohort.id_column == "participant_id" and list(cohort.table.columns) == ["participant_id", "age", "sex"]
    assert [s.subject_id for s in cohort.subjects] == IDS
    assert all(s.problem is None and s.t1 == raw / s.subject_id / "anat" / f"{s.subject_id}_T1w.nii.gz"
               for s in cohort.subjects)


def test_a_folder_and_a_csv_table(tmp_path):
    import nibabel as nib

    for sid in ("IXI-1", "IXI-2"):
        nib.save(small_ixi_scan(), str(tmp_path / f"{sid}.nii.gz"))
    pd.DataFrame({"subject_id": ["IXI-1", "IXI-2", "IXI-3"], "age": [30, 40, 50]}).to_csv(
        tmp_path / "ages.csv", index=False)
    cohort = read_raw_cohort(tmp_path, tmp_path / "ages.csv", "{root}/{subject_id}.nii.gz")
    assert [s.t1.name if s.t1 else None for s in cohort.subjects] == ["IXI-1.nii.gz", "IXI-2.nii.gz", None]
    assert cohort.subjects[2].problem == f"IXI-3: no T1 image matches {tmp_path}/IXI-3.nii.gz"


def test_two_matching_images_are_a_problem_not_a_guess(raw):
    extra = raw / "sub-01" / "anat" / "sub-01_run-2_T1w.nii.gz"
    extra.write_bytes((raw / "sub-01" / "anat" / "sub-01_T1w.nii.gz").read_bytes())
    subject = read_raw_cohort(raw, raw / "participants.tsv", BIDS_GLOB).subjects[1]
    assert subject.t1 is None and "2 T1 images match" in subject.problem and "narrow data.t1_glob" in subject.problem


@pytest.mark.parametrize("table, message", [
    ("age\n30\n", "no subject id column; expected one of subject_id, participant_id"),
    ("participant_id\tage\nsub-1\t30\nsub-1\t31\n", "duplicate subject ids: sub-1"),
    ("participant_id\tage\n", "lists no subjects"),
])
def test_bad_tables_are_named(tmp_path, table, message):
    (tmp_path / "participants.tsv").write_text(table)
    with pytest.raises(DataError, match=message):
        read_raw_cohort(tmp_path, tmp_path / "participants.tsv", BIDS_GLOB)


def test_a_derivative_inside_the_raw_root_is_refused(raw):
    with pytest.raises(DataError, match="inside data.root=.*never written"):
        check_outside(raw / "derivatives" / "x", raw)
    check_outside(raw.parent / "derivatives" / "x", raw)

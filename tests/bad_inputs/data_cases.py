"""Bad inputs of the data stage, met by ``make train``: tables, images, grids, stacked arrays,
age bins and data settings."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from tests.bad_inputs.world import Call, Case
from tests.builders import AFFINE, write_gm

TSV = "participants.tsv"


def _table(root, change):
    """Rewrite the cohort's participants table through ``change(table)`` (in place, or the new
    table it returns)."""
    table = pd.read_csv(root / TSV, sep="\t", dtype=str, keep_default_na=False)
    changed = change(table)
    table = table if changed is None else changed
    table.to_csv(root / TSV, sep="\t", index=False)


def _age(sid, value):
    def change(table):
        table.loc[table["participant_id"] == sid, "age"] = value
    return change


def _cell(row, column, value):
    def change(table):
        table.loc[row, column] = value
    return change


def _image(root, sid):
    return root / "gm" / f"{sid}_gm.nii.gz"


def _volume(root, sid):
    return nib.load(_image(root, sid)).get_fdata(dtype=np.float32)


def _table_case(id, what, spoil, culprit, *extra, cli=False):
    def make(c):
        root = c.cohort()
        spoil(root)
        return Call(c.train(root, *[e.format(root=root) for e in extra]))
    return Case(id, "tables", what, "train", make, culprit, cli=cli)


def _image_case(id, what, spoil, culprit, category="images", bystander=None, extra=()):
    def make(c):
        root = c.cohort()
        spoil(root)
        return Call(c.train(root, *[e.format(root=root) for e in extra]))
    return Case(id, category, what, "train", make, culprit, bystander=bystander)


def _setting_case(id, what, override, culprit):
    return Case(id, "configs", what, "train", lambda c: Call(c.train(c.cohort(), override)),
                culprit)


def _npy_case(id, what, spoil, culprit, *extra):
    def make(c):
        root = c.npy()
        spoil(root)
        return Call(c.train_npy(root, *extra))
    return Case(id, "stacked arrays", what, "train", make, culprit)


def _exclusions_listed(count):
    """The excluded subjects are in the failed run's exclusions.csv and (command line) its log."""
    def check(context, run_dir):
        listed = pd.read_csv(run_dir / "exclusions.csv")
        assert len(listed) == count and listed["reason"].str.contains("image file not found").all()
        log = run_dir / "train.log"
        if log.exists():
            assert f"excluded {count} subject(s)" in log.read_text()
            assert listed["reason"][0] in log.read_text()
    return check


def _exclude_case(id, what, doomed, culprit, count, cli=False):
    def make(c):
        root = c.cohort()
        for i in doomed:
            _image(root, f"sub-{i:03d}").unlink()
        return Call(c.train(root, "data.on_bad_subject=exclude"))
    return Case(id, "bins", what, "train", make, culprit, check=_exclusions_listed(count), cli=cli)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _reshaped(root, sid, shape=(22, 25, 20), affine=AFFINE):
    write_gm(_image(root, sid), np.zeros(shape, np.float32) + 0.2, affine)


def _shifted(root, sid):
    moved = AFFINE.copy()
    moved[:3, 3] += 5.0
    write_gm(_image(root, sid), _volume(root, sid), moved)


def _old_to_middle(keep):
    """All but ``keep`` of the eight subjects of bin 2 (sub-016 … sub-023) aged 50."""
    def change(table):
        table.loc[table.index[16 + keep:], "age"] = "50"
    return lambda root: _table(root, change)


def _stack(root, change):
    np.save(root / "gm.npy", change(np.load(root / "gm.npy")))


def _more_rows(root):
    table = pd.read_csv(root / "ages.csv", dtype=str)
    extra = table.iloc[:2].assign(subject_id=["sub-100", "sub-101"])
    pd.concat([table, extra]).to_csv(root / "ages.csv", index=False)


def _nan_row(stack):
    stack[3, 5, 5, 5] = np.nan
    return stack


CASES = [
    _table_case("table-missing", "no participants table (neither .tsv nor .csv)",
                lambda r: (r / TSV).unlink(),
                r"neither .*/participants\.tsv nor .*/participants\.csv exists", cli=True),
    _table_case("table-tsv-and-csv", "both participants.tsv and participants.csv",
                lambda r: (r / "participants.csv").write_text("participant_id,age\n"),
                r"both .*/participants\.tsv and .*/participants\.csv exist"),
    _table_case("table-named-csv-is-tsv", "data.participants names a .csv; only the .tsv exists",
                lambda r: None, r"participants table not found: .*/participants\.csv \(.*"
                r"/participants\.tsv exists: set data\.participants=",
                "data.participants={root}/participants.csv"),
    _table_case("table-empty-file", "an empty participants file",
                lambda r: (r / TSV).write_text(""), r"cannot read participants table .*\.tsv"),
    _table_case("table-header-only", "a table with a header and no rows",
                lambda r: (r / TSV).write_text("participant_id\tage\n"),
                r"participants\.tsv lists no subjects"),
    _table_case("table-no-age", "no age column",
                lambda r: _table(r, lambda t: t.rename(columns={"age": "years"})),
                r"participants\.tsv: no 'age' column \(found columns: participant_id, years\)"),
    _table_case("table-no-id", "no subject id column",
                lambda r: _table(r, lambda t: t.rename(columns={"participant_id": "who"})),
                r"participants\.tsv: no subject id column; expected one of subject_id"),
    _table_case("table-age-text", "a non-numeric age", lambda r: _table(r, _age("sub-005", "old")),
                r"sub-005: non-numeric age 'old' in .*participants\.tsv"),
    _table_case("table-age-outside-bins", "an age outside the bins",
                lambda r: _table(r, _age("sub-005", "5")),
                r"sub-005: age 5 outside the age bins \[10, 101\)"),
    _table_case("table-duplicate-id", "a subject listed twice",
                lambda r: _table(r, _cell(6, "participant_id", "sub-005")),
                r"participants\.tsv: duplicate subject ids: sub-005"),
    _table_case("table-empty-id", "an empty subject id",
                lambda r: _table(r, _cell(5, "participant_id", "")),
                r"participants\.tsv: empty subject id on line\(s\) 7"),
    _image_case("image-missing", "a subject's image is missing",
                lambda r: _image(r, "sub-005").unlink(),
                r"sub-005: image file not found: .*gm/sub-005_gm\.nii\.gz"),
    _image_case("image-truncated", "a truncated .nii.gz",
                lambda r: _truncate(_image(r, "sub-005")),
                r"sub-005: .*sub-005_gm\.nii\.gz is truncated or corrupt"),
    _image_case("image-not-nifti", "a text file where an image should be",
                lambda r: _image(r, "sub-005").write_text("not an image"),
                r"sub-005: cannot read .*sub-005_gm\.nii\.gz as NIfTI"),
    _image_case("image-4d", "a 4D image",
                lambda r: write_gm(_image(r, "sub-005"), np.zeros((22, 25, 21, 2)) + 0.2),
                r"sub-005: .*sub-005_gm\.nii\.gz has shape \(22, 25, 21, 2\); expected a 3D image"),
    _image_case("image-nan", "NaN voxels",
                lambda r: write_gm(_image(r, "sub-005"), np.where(
                    np.arange(_volume(r, "sub-005").size).reshape(22, 25, 21) == 7, np.nan,
                    _volume(r, "sub-005"))),
                r"sub-005: .*sub-005_gm\.nii\.gz has 1 NaN/inf voxels"),
    _image_case("image-not-probabilities", "values of 0-255, not GM probabilities",
                lambda r: write_gm(_image(r, "sub-005"), _volume(r, "sub-005") * 255),
                r"sub-005: .*has values in \[0, .*\]; expected grey-matter probabilities in \[0, 1\]"),
    _image_case("image-pattern-two-files", "a glob template matching two files",
                lambda r: write_gm(r / "gm" / "sub-005_gm_copy.nii.gz", _volume(r, "sub-005")),
                r"sub-005: pattern .*/gm/sub-005_gm\*\.nii\.gz matches 2 files; expected exactly one",
                extra=("data.image_template={{root}}/gm/{{subject_id}}_gm*.nii.gz",)),
    _image_case("grid-shape-one-image", "one image on another grid", lambda r: _reshaped(r, "sub-005"),
                r"sub-005: image shape \(22, 25, 20\) does not match the cohort grid \(22, 25, 21\)",
                category="grids"),
    _image_case("grid-shape-first-image", "the first image on another grid (not the others' fault)",
                lambda r: _reshaped(r, "sub-000"), r"sub-000: image shape \(22, 25, 20\)",
                category="grids", bystander="sub-001"),
    _image_case("grid-affine-one-image", "one image with another affine",
                lambda r: _shifted(r, "sub-005"),
                r"sub-005: affine of .*sub-005_gm\.nii\.gz differs from the cohort's",
                category="grids"),
    _image_case("grid-affine-first-image", "the first image with another affine",
                lambda r: _shifted(r, "sub-000"), r"sub-000: affine of .*sub-000_gm\.nii\.gz",
                category="grids", bystander="sub-001"),
    _image_case("grid-source-shape", "data.source_shape unlike every image", lambda r: None,
                r"the images \(24 of 24 images\) have shape \(22, 25, 21\); data\.source_shape "
                r"expects \(121, 145, 121\)", category="grids",
                extra=("data.source_shape=[121,145,121]",)),
    _image_case("grid-crop-too-large", "data.crop_shape larger than the images", lambda r: None,
                r"data\.crop_shape=\[30, 30, 30\] is larger than the images", category="grids",
                extra=("data.crop_shape=[30,30,30]",)),
    _image_case("grid-crop-offset", "data.crop_offset pushing the crop outside", lambda r: None,
                r"data\.crop_offset=\[5, 5, 5\] with crop_shape=\[20, 22, 19\] does not fit",
                category="grids", extra=("data.crop_offset=[5,5,5]",)),
    _npy_case("npy-more-volumes", "the stacked array has more volumes than the table rows",
              lambda r: _stack(r, lambda s: np.concatenate([s, s[:2]])),
              r"gm\.npy holds 26 volumes but .*ages\.csv 24 rows"),
    _npy_case("npy-more-rows", "the ages table has more rows than the stacked array",
              _more_rows, r"ages\.csv has 26 rows but .*gm\.npy 24 volumes"),
    _npy_case("npy-missing", "no stacked array", lambda r: (r / "gm.npy").unlink(),
              r"stacked volume array not found: .*gm\.npy"),
    _npy_case("npy-3d", "a 3D array, not N x X x Y x Z",
              lambda r: _stack(r, lambda s: s[..., 0]),
              r"gm\.npy has shape \(24, 22, 25\); expected N x X x Y x Z"),
    _npy_case("npy-nan-volume", "NaN in one volume of the stack", lambda r: _stack(r, _nan_row),
              r"sub-003: .*gm\.npy\[3\] has 1 NaN/inf voxels"),
    _npy_case("npy-source-shape", "data.source_shape unlike the stacked volumes", lambda r: None,
              r"the volumes of .*gm\.npy have shape \(22, 25, 21\); data\.source_shape expects",
              "data.source_shape=[121,145,121]"),
    _image_case("bin-too-small", "bin 2 holds 2 subjects (downsampling gives every bin 2)",
                _old_to_middle(2), r"bin 2 \(ages 70-100\) has 2 subject\(s\) \(the fewest",
                category="bins", bystander="bin 0"),
    _image_case("bin-empty", "no subject in bin 2", _old_to_middle(0),
                r"age bin\(s\) \[2\] \(70-100\) have no subjects after validation",
                category="bins"),
    _exclude_case("exclude-everyone", "on_bad_subject=exclude and every image missing",
                  range(24), r"all 24 subject\(s\) were excluded .*the first: sub-000: image file "
                  r"not found", 24),
    _exclude_case("exclude-then-empty-bin", "on_bad_subject=exclude empties bin 2",
                  range(16, 24), r"age bin\(s\) \[2\] \(70-100\) have no subjects", 8, cli=True),
    _setting_case("config-bin-edges", "data.bin_edges=[10]", "data.bin_edges=[10]",
                  r"data\.bin_edges=\[10\.0\]; expected at least 3 increasing edges"),
    _setting_case("config-split", "data.split=[0.5,0.5]", "data.split=[0.5,0.5]",
                  r"data\.split=\[0\.5, 0\.5\]; expected three fractions"),
    _setting_case("config-cache-dtype", "data.cache.dtype=float8", "data.cache.dtype=float8",
                  r"data\.cache\.dtype='float8'; expected one of"),
    _setting_case("config-on-bad-subject", "data.on_bad_subject=skip",
                  "data.on_bad_subject=skip", r"data\.on_bad_subject='skip'; expected 'fail' or "
                  "'exclude'"),
    _setting_case("config-format", "data.format=dicom", "data.format=dicom",
                  r"data\.format='dicom'; expected (?=.*'nifti')(?=.*'npy')"),  # every format
    _setting_case("config-model-too-deep", "more blocks than the grid allows",
                  "model.widths=[2,4,8,16,32]", r"too small for 5 blocks"),
]

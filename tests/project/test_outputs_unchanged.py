"""Issue 25: the outputs of train, explain, evaluate and infer on the tiny end-to-end fixtures are
those recorded in ``golden_outputs.json`` (before the refactor); and the comparison can fail.

``tests/project/golden.py`` runs the stages and reduces their files to a fingerprint; its
docstring says what is kept, how floats are rounded, and why. After an intended change of
behaviour, regenerate the golden file: ``python -m tests.project.golden --write``.
"""
import copy
import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tests.builders import AFFINE, SHAPE, write_gm
from tests.project import golden


def _document() -> dict:
    return json.loads(golden.GOLDEN.read_text())


@pytest.mark.slow
def test_stage_outputs_are_those_of_the_golden_file(tmp_path):
    document = _document()
    base = (tmp_path / "pipeline").resolve()
    files = golden.fingerprint(golden.run_pipeline(base), base)
    written = tmp_path / "fingerprint.json"
    written.write_text(golden.dump(golden.golden_document(files)))
    changes = golden.compare(document["files"], files)
    assert not changes, golden.describe(changes, document["generated_from"], fingerprint_file=written)


# --------------------------------------------------------------------------- the check can fail

def test_the_golden_file_covers_every_stage_and_names_its_commit():
    document = _document()
    assert len(document["generated_from"]) == 40
    stages = {name.split("/")[0] for name in document["files"]}
    assert stages == set(golden.STAGES)
    for name in ("train/metrics.json", "train/model.keras", "explain/explain.json",
                 "evaluate/scorecard.csv", "evaluate/evaluate.json", "infer/infer.json",
                 "infer/regions/custom_inference.csv"):
        assert document["files"][name]["kind"] != "exists", name


def test_a_changed_number_in_the_golden_tables_is_reported():
    document = _document()
    files = document["files"]
    name, column, row = next((n, c, i) for n, f in sorted(files.items()) if f["kind"] == "table"
                             for c, values in f["columns"].items()
                             for i, v in enumerate(values) if isinstance(v, float) and abs(v) > 1e-3)
    changed = copy.deepcopy(files)
    old = changed[name]["columns"][column][row]
    new = changed[name]["columns"][column][row] = golden.significant(old * 1.001)
    del changed["infer/infer.json"]
    changes = golden.compare(files, changed)
    assert changes == {
        name: [f"{name}/columns/{column}[{row}]: {old!r} → {new!r}"],
        "infer/infer.json": [f"infer/infer.json: no longer written (was "
                             f"{golden._short(files['infer/infer.json'])})"]}
    message = golden.describe(changes, document["generated_from"])
    assert f"{name}/columns/{column}[{row}]: {old!r} → {new!r}" in message
    assert document["generated_from"] in message and "python -m tests.project.golden --write" in message


def _fake_run(folder):
    """A run directory with one file of each kind the fingerprint reads."""
    folder.mkdir(parents=True)
    pd.DataFrame({"subject_id": ["sub-000", "sub-001"], "aopc": [0.1234567, -0.0456789],
                  "seconds": [1.5, 2.5]}).to_csv(folder / "aopc.csv", index=False)
    (folder / "run.json").write_text(json.dumps(
        {"stage": "evaluate", "state": "finished", "started": "2026-01-01T00:00:00",
         "pid": 12, "phase_seconds": {"maps": 3.2}, "max_rel_error": 2.8e-8,
         "train_dir": str(folder), "note": "test accuracy 66.7 % (6 subjects)"}))
    write_gm(folder / "map.nii.gz", np.linspace(-1, 1, np.prod(SHAPE)).reshape(SHAPE), AFFINE)
    (folder / "verdict.md").write_text("| dtd | 0.013 ± 0.040 ✗ | 2.0e-07 ✓ |\n")
    (folder / "figure.png").write_bytes(b"not compared")


def test_numbers_in_text_may_round_the_other_way_but_not_change():
    assert golden.same_text("| dtd | 0.770 ± 0.054 | 2.0e-07 |", "| dtd | 0.770 ± 0.053 | 1.1e-07 |")
    assert not golden.same_text("0.770 ± 0.054", "0.772 ± 0.054")
    assert not golden.same_text("bin1: sub-007, 8 subjects", "bin2: sub-007, 8 subjects")
    assert not golden.same_text("bin1: sub-007, 8 subjects", "bin1: sub-008, 8 subjects")
    assert not golden.same_text("8 subjects", "9 subjects")
    assert not golden.same_text("fails: aopc", "fails: aopc, localisation")


def _fingerprint(folder):
    return golden.fingerprint({"evaluate": folder}, folder.parent)


def _edit_json(path, **values):
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


def test_the_fingerprint_sees_changed_outputs_and_ignores_noise(tmp_path):
    before = tmp_path / "a" / "run"
    _fake_run(before)
    reference = _fingerprint(before)
    after = tmp_path / "b" / "run"
    shutil.copytree(before, after)
    _edit_json(after / "run.json", train_dir=str(after))  # each run's own temporary folder
    assert golden.differences(reference, _fingerprint(after)) == []

    # run-to-run noise: times, pids, durations, round-off residuals, the last bits of a float,
    # a display value rounding the other way, a figure's bytes
    table = pd.read_csv(after / "aopc.csv")
    table.loc[0, "aopc"] *= 1 + 3e-7
    table["seconds"] = [9.0, 9.0]
    table.to_csv(after / "aopc.csv", index=False)
    _edit_json(after / "run.json", started="2026-02-02T00:00:00", pid=99,
               phase_seconds={"maps": 7.0}, max_rel_error=1.2e-11)
    (after / "verdict.md").write_text("| dtd | 0.013 ± 0.041 ✗ | 1.1e-07 ✓ |\n")
    (after / "figure.png").write_bytes(b"other bytes")
    assert golden.differences(reference, _fingerprint(after)) == []

    # changes of behaviour: one table value, a JSON value, a sentence, a map, a report, a file
    table.loc[1, "aopc"] = -0.0457
    table.to_csv(after / "aopc.csv", index=False)
    _edit_json(after / "run.json", state="failed", note="test accuracy 50.0 % (6 subjects)")
    img = nib.load(after / "map.nii.gz")
    data = img.get_fdata()
    data[0, 0, 0] += 0.01  # one voxel, by 1 %: the sum sees it (the absolute sum would not)
    write_gm(after / "map.nii.gz", data, AFFINE)
    (after / "verdict.md").write_text("| dtd | 0.015 ± 0.041 ✗ | 1.1e-07 ✓ |\n")
    (after / "figure.png").unlink()
    changed = golden.differences(reference, _fingerprint(after))
    assert changed[:2] == ["evaluate/aopc.csv/columns/aopc[1]: -0.045679 → -0.0457",
                           "evaluate/figure.png: removed (was {\"kind\": \"exists\"})"]
    assert [line.split(":")[0] for line in changed[2:]] == [
        "evaluate/map.nii.gz/abs_profiles[0][0]", "evaluate/map.nii.gz/abs_profiles[1][0]",
        "evaluate/map.nii.gz/abs_profiles[2][0]", "evaluate/map.nii.gz/min",
        "evaluate/map.nii.gz/sum", "evaluate/run.json/value/note", "evaluate/run.json/value/state",
        "evaluate/verdict.md/lines[0]"]
    assert changed[-1] == ('evaluate/verdict.md/lines[0]: "| dtd | 0.013 ± 0.040 ✗ | 2.0e-07 ✓ |"'
                           ' → "| dtd | 0.015 ± 0.041 ✗ | 1.1e-07 ✓ |"')

    # a map moved by one voxel keeps its sum and quantiles, not its profiles
    shutil.copy(before / "map.nii.gz", after / "map.nii.gz")
    write_gm(after / "map.nii.gz", np.roll(nib.load(after / "map.nii.gz").get_fdata(), 1, axis=1),
             AFFINE)
    moved = [line for line in golden.differences(reference, _fingerprint(after)) if "map" in line]
    assert moved and all("abs_profiles[1]" in line for line in moved)

"""Bad inputs of the stages that use earlier runs: run directories, targets, training runs to
explain, atlases, data overrides, and the infer stage."""
from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pandas as pd

from tests.bad_inputs.world import (
    FAILED_TRAIN,
    FINISHED_EXPLAIN,
    FINISHED_TRAIN,
    INTERRUPTED_TRAIN,
    KILLED_EXPLAIN,
    KILLED_TRAIN,
    Call,
    Case,
)
from tests.builders import RUN_SHAPE, TRAIN_CROP, write_gm


def _explain_case(id, category, what, make_overrides, culprit, cli=False, early=False):
    def make(c):
        return Call(c.explain(*make_overrides(c)))
    return Case(id, category, what, "explain", make, culprit, cli=cli, early=early)


def _nothing_written(context, run_dir):
    assert not run_dir.exists() or not any(run_dir.iterdir()), sorted(run_dir.iterdir())


def _atlas(c, labels=(5, 8), affine=None, volumes=None):
    """A copy of the tiny run's atlas (labels 5 and 8) with a label table listing ``labels``."""
    source = c.world.train_run["atlas"]
    image = c.tmp / "atlas.nii.gz"
    if volumes:
        nib.save(nib.Nifti1Image(np.ones(RUN_SHAPE + (volumes,), np.float32),
                                 nib.load(source).affine), str(image))
    elif affine is not None:
        write_gm(image, nib.load(source).get_fdata(), affine)
    else:
        shutil.copy(source, image)
    table = c.tmp / "labels.csv"
    pd.DataFrame({"index": list(labels), "name": [f"r{k}" for k in labels]}).to_csv(table,
                                                                                   index=False)
    return [f"atlas.path={image}", f"atlas.labels={table}"]


def _far_away(c):
    affine = nib.load(c.world.train_run["atlas"]).affine.copy()
    affine[:3, 3] += 1000.0
    return _atlas(c, affine=affine)


def _other_model(c):
    from brainage.model import build_model

    run = c.tmp / "train"
    (run / ".hydra").mkdir(parents=True)
    build_model(input_shape=(12, 12, 12, 1), widths=(2,), dense_units=2).save(run / "model.keras")
    trained = c.world.train_run["run"]
    for name in (".hydra/config.yaml", "split.csv"):
        shutil.copy(trained / name, run / name)
    return [f"train_dir={run}"]


def _changed_cohort(c):
    root = shutil.copytree(c.world.train_run["tmp"] / "cohort", c.tmp / "cohort")
    table = pd.read_csv(root / "participants.tsv", sep="\t", dtype=str)
    table.iloc[1:].to_csv(root / "participants.tsv", sep="\t", index=False)
    return [f"data.root={root}", f"data.cache.dir={c.tmp / 'cache'}"]


def _only_failed_runs(c):
    failed = c.tmp / "outs" / FAILED_TRAIN
    shutil.copytree(c.outputs / FAILED_TRAIN, failed)
    return [f"outputs_dir={c.tmp / 'outs'}"]


def _refused(id, what, stage, run, culprit, make_overrides=lambda c: [], cli=False):
    def make(c):
        overrides = (c.train(c.world.cohort) if stage == "train" else
                     c.explain() if stage == "explain" else [])
        return Call([*overrides, *make_overrides(c)], run_dir=c.run(run))
    return Case(id, "run directories", what, stage, make, culprit, cli=cli)


def _init_from(id, what, source, culprit, early=True):
    """A training run told to start from ``source(context)`` (``trainer.init_from``)."""
    def make(c):
        return Call(c.train(c.world.cohort, f"trainer.init_from={source(c)}"))
    return Case(id, "training runs", what, "train", make, culprit, early=early)


def _unmatched_model(c):
    """A model for the training cases' grid whose every layer has another width."""
    from brainage.model import build_model

    path = c.tmp / "other.keras"
    build_model(input_shape=TRAIN_CROP + (1,), widths=(3,), dense_units=5).save(path)
    return path


def _resume(id, what, target, culprit, cli=False):
    def make(c):
        run_dir = target(c)
        return Call([f"trainer.resume={run_dir}"], run_dir=run_dir)
    return Case(id, "run directories", what, "train", make, culprit, cli=cli,
                check=_nothing_written if "nothing" in id else None)


CASES = [
    _refused("train-into-finished-run", "a training run into a finished run's directory", "train",
             FINISHED_TRAIN, r"already holds an earlier train run, finished; a run never "
             r"overwrites an earlier one", cli=True),
    _refused("train-into-interrupted-run", "a fresh training run into an interrupted run's "
             "directory", "train", INTERRUPTED_TRAIN, r"interrupted; continue it with python -m "
             r"brainage\.train trainer\.resume=.*2026-01-02_00-00-00"),
    _refused("explain-into-finished-run", "an explain run into a finished explain run's directory",
             "explain", FINISHED_EXPLAIN, r"already holds an earlier explain run, finished",
             cli=True),
    _refused("explain-into-failed-run", "an explain run into a failed run's directory", "explain",
             FAILED_TRAIN, r"already holds an earlier train run, failed \(boom: the disk was full\)"),
    _refused("explain-into-killed-run", "an explain run into a killed run's directory", "explain",
             KILLED_EXPLAIN, r"explain run, stopped without finishing \(killed while running\)"),
    _refused("evaluate-into-finished-run", "an evaluate run into a finished run's directory",
             "evaluate", FINISHED_EXPLAIN, r"already holds an earlier explain run, finished",
             make_overrides=lambda c: [f"outputs_dir={c.outputs}"]),
    _resume("resume-finished-run", "trainer.resume of a finished run", lambda c: c.run(FINISHED_TRAIN),
            r"holds a train run that is finished; only an unfinished run can be continued", cli=True),
    _resume("resume-nothing", "trainer.resume of a folder holding no run",
            lambda c: c.tmp / "nothing", r"trainer\.resume=.*nothing: no checkpoint to resume"),
    _explain_case("target-class-7", "targets", "targets=[7] with three classes",
                  lambda c: ["targets=[7]"], r"target 7: no such class; the training run "
                  r".*2026-01-01_00-00-00 has 3 classes, 0 to 2", cli=True, early=True),
    _explain_case("target-class-minus-1", "targets", "targets=[-1]", lambda c: ["targets=[-1]"],
                  r"target -1: no such class", early=True),
    _explain_case("target-word", "targets", "targets=[foo]", lambda c: ["targets=[foo]"],
                  r"target 'foo'; expected predicted, true, all or a class index", early=True),
    _explain_case("train-dir-missing", "training runs", "train_dir that does not exist",
                  lambda c: [f"train_dir={c.tmp / 'none'}"], r"train_dir=.*none does not exist",
                  early=True),
    _explain_case("train-dir-without-model", "training runs", "train_dir holding no model.keras",
                  lambda c: [f"train_dir={c.outputs / INTERRUPTED_TRAIN}"],
                  r"train_dir=.*2026-01-02_00-00-00 holds no model\.keras", early=True),
    _explain_case("train-dir-failed", "training runs", "train_dir of a failed run",
                  lambda c: [f"train_dir={c.outputs / FAILED_TRAIN}"], r"the training run .* did "
                  r"not finish, its run\.json says failed \(boom: the disk was full\)", early=True),
    _explain_case("train-dir-killed", "training runs", "train_dir of a killed run",
                  lambda c: [f"train_dir={c.outputs / KILLED_TRAIN}"], r"says stopped without "
                  r"finishing \(killed while running\)", early=True),
    _explain_case("model-path-of-killed-run", "training runs", "model_path inside a killed run",
                  lambda c: [f"model_path={c.outputs / KILLED_TRAIN / 'model.keras'}"],
                  r"model_path=.*model\.keras: the training run .* did not finish", early=True),
    _explain_case("model-path-missing", "training runs", "model_path that does not exist",
                  lambda c: [f"model_path={c.tmp / 'model.keras'}"],
                  r"model_path=.*model\.keras does not exist", early=True),
    _explain_case("no-finished-train-run", "training runs", "only failed training runs to pick",
                  _only_failed_runs, r"no finished train run with model\.keras under .*outs/train/ "
                  r"\(1 unfinished or failed run\(s\) skipped\)", early=True),
    _explain_case("model-for-another-grid", "training runs", "a model made for another grid",
                  _other_model, r"expects inputs \(12, 12, 12, 1\) but the data are \(9, 10, 11, 1\)"),
    _explain_case("cohort-changed", "training runs", "data.root= a cohort that lost a subject",
                  _changed_cohort, r"no longer reproduces .*2026-01-01_00-00-00/split\.csv"),
    _init_from("init-from-missing", "trainer.init_from that does not exist", lambda c: c.tmp / "none",
               r"trainer\.init_from=.*none does not exist; pass a finished training run directory"),
    _init_from("init-from-without-model", "trainer.init_from of a run holding no model.keras",
               lambda c: c.run(INTERRUPTED_TRAIN),
               r"trainer\.init_from=.*2026-01-02_00-00-00 holds no model\.keras"),
    _init_from("init-from-failed-run", "trainer.init_from of a failed run",
               lambda c: c.run(FAILED_TRAIN), r"trainer\.init_from=.*: the training run .* did not "
               r"finish, its run\.json says failed \(boom: the disk was full\)"),
    _init_from("init-from-other-grid", "trainer.init_from of a run on another grid",
               lambda c: c.run(FINISHED_TRAIN), r"2026-01-01_00-00-00: its model takes inputs "
               r"\(9, 10, 11, 1\), this run's model \(20, 22, 19, 1\)", early=False),
    _init_from("init-from-no-layer-matches", "trainer.init_from of a model of other widths",
               _unmatched_model, r"other\.keras: no layer of its model matches this run's model "
               r"in name and weight shapes", early=False),
    _explain_case("subjects-unknown", "configs", "subjects=[nobody]",
                  lambda c: ["subjects=[nobody]"], r"subjects not in the training run's cohort: "
                  r"nobody"),
    _explain_case("batch-size-zero", "configs", "batch_size=0", lambda c: ["batch_size=0"],
                  r"batch_size=0; expected ≥ 1", early=True),
    _explain_case("figures-negative", "configs", "figures.subjects=-1",
                  lambda c: ["figures.subjects=-1"], r"figures\.subjects=-1; expected all or a "
                  r"number ≥ 0", early=True),
    _explain_case("data-override-typo", "configs", "++data.cache.dri=… (a misspelt data key)",
                  lambda c: ["++data.cache.dri=/scratch"], r"data\.cache\.dri: not a key of the "
                  r"training run's data config"),
    _explain_case("atlas-custom-without-path", "atlases", "atlas=custom without atlas.path",
                  lambda c: ["atlas.path=???"],
                  r"atlas=custom needs atlas\.path=/path/atlas\.nii\.gz", early=True),
    _explain_case("atlas-custom-null-path", "atlases", "atlas=custom atlas.path=null",
                  lambda c: ["atlas.path=null"], r"atlas=custom needs atlas\.path=", early=True),
    _explain_case("atlas-file-missing", "atlases", "atlas.path naming no file",
                  lambda c: [f"atlas.path={c.tmp / 'none.nii.gz'}"],
                  r"atlas custom: atlas image .*none\.nii\.gz is missing"),
    _explain_case("atlas-label-not-listed", "atlases", "the atlas holds a label its table lacks",
                  lambda c: _atlas(c, labels=(5,)), r"atlas .*atlas\.nii\.gz holds 1 label "
                  r"value\(s\) that .*labels\.csv does not list \(e\.g\. \[8\]\)"),
    _explain_case("atlas-label-absent", "atlases", "the table lists a label the atlas lacks",
                  lambda c: _atlas(c, labels=(5, 8, 9)), r".*labels\.csv lists 1 label\(s\) that "
                  r"atlas .*atlas\.nii\.gz does not hold \(e\.g\. \[9\]\)"),
    _explain_case("atlas-4d-count", "atlases", "a 4D atlas with more labels than volumes",
                  lambda c: _atlas(c, labels=(1, 2, 3), volumes=2), r"atlas .*atlas\.nii\.gz: 2 "
                  r"probability volumes but 3 labels in .*labels\.csv"),
    _explain_case("atlas-other-space", "atlases", "an atlas 1 m away from the maps", _far_away,
                  r"atlas .*atlas\.nii\.gz covers none of the maps' voxels"),
    Case("infer-explain-dir-killed", "run directories", "infer on a killed explain run", "infer",
         lambda c: Call([f"explain_dir={c.outputs / KILLED_EXPLAIN}"]),
         r"explain_dir=.*: the explain run did not finish, its run\.json says stopped without "
         r"finishing", early=True),
    Case("infer-alpha", "configs", "alpha=2", "infer", lambda c: Call(["alpha=2"]),
         r"alpha=2; expected a level between 0 and 1", early=True),
]

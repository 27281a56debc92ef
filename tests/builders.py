"""Builders shared by the tests: tiny cohorts written as real files, composed configs, a tiny run.

Shapes are small and uneven, affines non-identity, so axis mix-ups and affine bugs fail loudly.
Test modules import from here (never from each other); fixtures built from these live in
``tests/conftest.py``.
"""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"

SHAPE = (7, 8, 9)
AFFINE = np.array([[-2.0, 0.1, 0.0, 30.0],
                   [0.0, 2.5, 0.0, -40.0],
                   [0.0, 0.0, 3.0, -20.0],
                   [0.0, 0.0, 0.0, 1.0]])

# The training tests' grid: a source image and the crop the network sees.
TRAIN_SOURCE = (22, 25, 21)
TRAIN_CROP = (20, 22, 19)
# A two-block network small enough to train in seconds; BN statistics settle within ~100 steps.
TINY_MODEL = ["model.widths=[2,4]", "model.dense_units=8", "model.bn_momentum=0.9",
              "trainer.batch_size=4", "trainer.verbose=0", "data.stream.workers=1",
              "trainer.early_stopping_patience=null"]

# The explain/evaluate tests' tiny run: its source grid, crop and "ageing region".
RUN_SHAPE = (11, 12, 13)
RUN_CROP = [9, 10, 11]
RUN_CORE = (slice(3, 8),) * 3


def write_gm(path, data, affine=AFFINE):
    """A float32 NIfTI with sform and qform (MNI code), parent folders created."""
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    img.set_sform(affine, code=4)
    img.set_qform(affine, code=4)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def compose_stage(config_name: str, *overrides):
    """A stage's primary config composed by Hydra with ``overrides``."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))


def compose_data(preset: str = "pac2019", *overrides, seed: int = 0):
    """The data config ``configs/data/<preset>.yaml`` as a stage sees it, with ``overrides`` of its keys.

    ``overrides`` are written without the ``data.`` prefix (``"root=/tmp/x"``); ``seed`` is the
    run's seed that ``split_seed: ${seed}`` refers to. The node keeps its parent, so interpolations
    resolve; saving ``{"seed": ..., "data": node}`` gives what a run's ``.hydra/config.yaml`` holds.
    """
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(overrides=[f"+data={preset}", f"+seed={seed}",
                                 *(f"data.{o}" for o in overrides)])
    return cfg.data


def compose_train(*overrides, tiny=True):
    return compose_stage("train", *(TINY_MODEL if tiny else []), *overrides)


def tiny_volumes(bins, rng):
    """Noise, plus a box whose mean intensity encodes the class."""
    volumes = rng.uniform(0, 0.3, size=(len(bins),) + TRAIN_CROP).astype(np.float32)
    volumes[:, 4:12, 5:13, 4:11] += (0.05 + 0.3 * np.asarray(bins))[:, None, None, None]
    return volumes


def tiny_data(n_per_bin=20, seed=0):
    """60 volumes of 20 x 22 x 19 in three bins, split 12/4/4 per bin (a PreparedData)."""
    from brainage.data.prepared import PreparedData
    from brainage.neuro.grid import Grid

    rng = np.random.default_rng(seed)
    bins = np.repeat(np.arange(3), n_per_bin)
    split = np.tile(np.array(["train"] * 12 + ["val"] * 4 + ["test"] * 4)[:n_per_bin], 3)
    table = pd.DataFrame({
        "subject_id": [f"sub-{i:03d}" for i in range(len(bins))],
        "age": 10 + 30 * bins + rng.integers(0, 30, len(bins)),
        "bin": bins,
        "split": split,
    })
    grid = Grid.build(AFFINE, TRAIN_SOURCE, TRAIN_CROP, (1, 2, 1))
    return PreparedData(tiny_volumes(bins, rng), table, grid, [10, 40, 70, 101])


def write_cohort(root: Path, n_per_bin=8, seed=0) -> Path:
    """A PAC-layout cohort on an uneven grid with a non-identity affine; the class is in a box."""
    rng = np.random.default_rng(seed)
    bins = np.repeat(np.arange(3), n_per_bin)
    ages = np.array([rng.uniform(18, 39), rng.uniform(41, 69), rng.uniform(71, 90)])[bins]
    volumes = np.zeros((len(bins),) + TRAIN_SOURCE, dtype=np.float32)
    volumes[:, 1:21, 2:24, 1:20] = tiny_volumes(bins, rng)
    ids = [f"sub-{i:03d}" for i in range(len(bins))]
    (root / "gm").mkdir(parents=True)
    for sid, volume in zip(ids, np.clip(volumes, 0, 1)):
        img = nib.Nifti1Image(volume, AFFINE)
        img.set_sform(AFFINE, code=4)
        nib.save(img, str(root / "gm" / f"{sid}_gm.nii.gz"))
    pd.DataFrame({"participant_id": ids, "age": np.round(ages, 1)}).to_csv(
        root / "participants.tsv", sep="\t", index=False)
    return root


def cohort_overrides(root: Path, cache: Path) -> list:
    """Train overrides that read the cohort of :func:`write_cohort`."""
    return ["data=pac2019", f"data.root={root}", "data.n_subjects=null", "data.source_shape=null",
            f"data.crop_shape={list(TRAIN_CROP)}", "data.crop_offset=[1,2,1]",
            f"data.cache.dir={cache}", "data.split=[0.5,0.25,0.25]"]


def build_train_run(tmp: Path) -> dict:
    """A cohort on an uneven grid, a one-block model fitted briefly, and its run directory.

    Returns the run directory, the prepared data, and a custom atlas (image and labels) whose
    region 5 is the cohort's "ageing region".
    """
    import keras

    from brainage.model import build_model

    data, prep = _run_cohort(tmp)
    keras.utils.set_random_seed(0)
    model = build_model(input_shape=tuple(RUN_CROP) + (1,), widths=(3,), dense_units=6,
                        n_classes=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.asarray(prep.volumes, np.float32)[..., None]
    model.fit(x, prep.labels(), epochs=15, batch_size=8, verbose=0)
    run = tmp / "outputs" / "train" / "2026-01-01_00-00-00"
    (run / ".hydra").mkdir(parents=True)
    model.save(run / "model.keras")
    OmegaConf.save(OmegaConf.create({"seed": 0, "data": data}), run / ".hydra" / "config.yaml")
    prep.split_table().to_csv(run / "split.csv", index=False)
    return {"run": run, "tmp": tmp, "prep": prep, "atlas": tmp / "atlas.nii.gz",
            "labels": tmp / "atlas.csv"}


def _run_cohort(tmp: Path):
    """The cohort of :func:`build_train_run` (ages in an "ageing region"), a custom atlas, the
    data config and the prepared data."""
    from brainage.data.cohort import prepare_data

    rng = np.random.default_rng(1)
    root = tmp / "cohort"
    ages = np.concatenate([rng.uniform(18, 39, 8), rng.uniform(41, 69, 8), rng.uniform(71, 90, 8)])
    ids = [f"sub-{i:02d}" for i in range(len(ages))]
    for sid, age in zip(ids, ages):
        vol = rng.uniform(0.2, 0.8, RUN_SHAPE) * 0.5
        vol[RUN_CORE] += 0.4 * (1 - (age - 18) / 72)  # an "ageing region"
        write_gm(root / "gm" / f"{sid}_gm.nii.gz", np.clip(vol, 0, 1))
    pd.DataFrame({"subject_id": ids, "age": ages.round(1)}).to_csv(root / "participants.tsv",
                                                                   sep="\t", index=False)
    labels = np.zeros(RUN_SHAPE, np.int16)
    labels[RUN_CORE] = 5
    labels[:, :, 9:] = 8
    write_gm(tmp / "atlas.nii.gz", labels)
    pd.DataFrame({"index": [5, 8], "name": ["Left_Core", "Top"]}).to_csv(tmp / "atlas.csv",
                                                                        index=False)
    data = compose_data(
        "pac2019", f"root={root}", "source_shape=null", f"crop_shape={RUN_CROP}",
        "crop_offset=[1,1,1]", "split=[0.5,0.25,0.25]", f"cache.dir={tmp / 'cache'}",
        "cache.dtype=float32")
    return data, prepare_data(data, seed=0, progress=False)


def _require_positive_top_contributions(model, x, floor: float = 0.5) -> None:
    """Fail the fixture, not a later test, when some subject's top layer has (almost) no positive
    contribution: DTD's map of that subject would be zero and its relevance shares undefined."""
    import keras

    top = model.get_layer("age")
    features = np.asarray(keras.Model(model.input, top.input)(x))
    positive = np.maximum(features * top.get_weights()[0][:, 0], 0).sum(axis=1)
    assert positive.min() > floor, f"degenerate test regressor: z+ denominators {positive.min()}"


def build_regression_run(tmp: Path) -> dict:
    """The cohort of :func:`build_train_run` with a one-block age regressor (``model.task=
    regression``) fitted briefly: ``model.keras`` (head folded), ``split.csv``, the config and a
    ``metrics.json`` holding the bias correction fitted on the validation split, as a training
    run of the regression writes them.

    Returns the run directory, the prepared data, the atlas and ``correction`` (the fitted
    :class:`~brainage.training.age_gap.AgeBiasCorrection`).
    """
    import json

    import keras

    from brainage.model import build_model, fold_age_head
    from brainage.training.age_gap import AgeBiasCorrection

    data, prep = _run_cohort(tmp)
    ages = prep.table["age"].to_numpy(dtype=np.float32)
    train = prep.indices("train")
    keras.utils.set_random_seed(0)
    # 16 units at 3e-3, not 6 at 1e-2: with 6, some subjects kept one live unit whose weight to
    # the age was negative, so DTD's z+ top layer had nothing to pass relevance to (a zero map),
    # and which subjects did depended on thread scheduling.
    model = build_model(input_shape=tuple(RUN_CROP) + (1,), widths=(3,), dense_units=16,
                        age_scale=(float(ages[train].mean()), float(ages[train].std())))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mae")
    x = np.asarray(prep.volumes, np.float32)[..., None]
    model.fit(x[train], ages[train], epochs=40, batch_size=4, verbose=0)
    model = fold_age_head(model)
    _require_positive_top_contributions(model, x)
    val = prep.indices("val")
    correction = AgeBiasCorrection.fit(ages[val], np.asarray(model(x[val]))[:, 0])
    run = tmp / "outputs" / "train" / "2026-01-01_00-00-00"
    (run / ".hydra").mkdir(parents=True)
    model.save(run / "model.keras")
    OmegaConf.save(OmegaConf.create({"seed": 0, "data": data, "model": {"task": "regression"}}),
                   run / ".hydra" / "config.yaml")
    prep.split_table().to_csv(run / "split.csv", index=False)
    (run / "metrics.json").write_text(json.dumps({
        "task": "regression", "age_gap": {"correction": correction.as_dict(), "fitted_on": "val"}}))
    return {"run": run, "tmp": tmp, "prep": prep, "atlas": tmp / "atlas.nii.gz",
            "labels": tmp / "atlas.csv", "correction": correction}


def assert_same_table(left: pd.DataFrame, right: pd.DataFrame, name: str, rtol: float = 1e-6) -> None:
    """Two runs' tables agree to ``rtol``; a ``rel_error`` column to 1e-6 absolute as well.

    A conservation error at float32 round-off (~1e-8) is noise: another process's forward pass
    may round otherwise (5.9e-8 against 1.8e-8 in one run, with identical maps). The errors that
    mean something (0.02, 1.0) stay held to ``rtol``.
    """
    left, right = left.copy(), right.copy()
    if "rel_error" in left.columns and "rel_error" in right.columns:
        np.testing.assert_allclose(right.pop("rel_error"), left.pop("rel_error"), rtol=rtol,
                                   atol=1e-6, err_msg=f"{name} rel_error")
    pd.testing.assert_frame_equal(left, right, check_exact=False, rtol=rtol, obj=name)


def pin_explainer(overrides, method="dtd"):
    """``overrides`` with ``explainer=<method>`` first unless they choose the explainer group:
    tests of the explain machinery keep the seed's DTD whatever ``make explain``'s default is."""
    chosen = any(str(o).lstrip("+~").split("=")[0] == "explainer" for o in overrides)
    return tuple(overrides) if chosen else (f"explainer={method}", *overrides)


def compose_explain(train_run, *overrides):
    """The explain config for the tiny run of :func:`build_train_run`, with its custom atlas
    (explainer ``dtd`` unless an override chooses another)."""
    return compose_stage(
        "explain", f"train_dir={train_run['run']}", "atlas=custom",
        f"atlas.path={train_run['atlas']}", f"atlas.labels={train_run['labels']}",
        "progress=false", "figures.subjects=1", *pin_explainer(overrides))


def run_with_bin_edges(run: Path, dest: Path, edges) -> Path:
    """A copy of the training run ``run`` at ``dest`` whose config names other age bins (an
    ensemble member that cannot join the others)."""
    import shutil

    shutil.copytree(run, dest)
    cfg = OmegaConf.load(dest / ".hydra" / "config.yaml")
    cfg.data.bin_edges = edges
    OmegaConf.save(cfg, dest / ".hydra" / "config.yaml")
    return dest


def exit_status(main, cfg, run_dir) -> int:
    """A stage's command line (``main``: its ``_main``) run on ``cfg`` into ``run_dir``: 0 when
    it returns, else the status it exits with."""
    try:
        main(cfg, run_dir=run_dir)
    except SystemExit as exc:
        return exc.code
    return 0

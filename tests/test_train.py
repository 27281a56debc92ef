"""The training stage on tiny problems: contract files, learning, seeds, resume, errors, configs."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from brainage.data.cohort import prepare_data
from brainage.errors import TrainError
from brainage.runs import latest_run
from brainage.train import train
from brainage.training.baseline_verdict import beating_baselines
from tests.builders import (
    AFFINE,
    REPO,
    TINY_MODEL,
    TRAIN_SOURCE,
    cohort_overrides,
    compose_train,
    tiny_data,
    write_cohort,
)

EXPERIMENTS = sorted(p.stem for p in (REPO / "experiments").glob("*.yaml"))
CONTRACT_FILES = ["model.keras", "metrics.json", "history.csv", "split.csv",
                  "training_curves.png", "confusion_matrix.png", "test_predictions.csv"]


def _weights(path):
    import keras

    return keras.saving.load_model(path).get_weights()


def _has_gpu() -> bool:
    """Asked of the backend directly, not through the stage's device list."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


# --------------------------------------------------------------------------- configs

@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(experiment):
    cfg = compose_train(f"experiment={experiment}", tiny=False)
    assert cfg.stage == "train"
    assert {"data", "model", "trainer", "seed"} <= set(cfg)
    assert cfg.trainer.epochs >= 1 and cfg.model.widths


@pytest.mark.slow
def test_quick_is_the_default_and_seed_experiment_replaces_it():
    quick = compose_train(tiny=False)
    assert quick.trainer.epochs == compose_train("experiment=quick", tiny=False).trainer.epochs
    assert quick.data.synthetic.age_distribution == "balanced"
    seed = compose_train("experiment=seed_taylor2019", tiny=False)
    assert seed.trainer.epochs == 34
    assert list(seed.data.bin_edges) == [10, 40, 70, 101]
    assert seed.data.balance == "downsample"
    assert list(seed.model.widths) == [8, 16, 32, 64]
    bare = compose_train("~experiment", tiny=False)
    assert bare.trainer.epochs == 30


# --------------------------------------------------------------------------- training runs

@pytest.mark.slow
def test_tiny_run_learns_and_writes_the_contract_files(tmp_path):
    cfg = compose_train("trainer.epochs=20", "trainer.learning_rate=3e-3", "seed=1")
    data = tiny_data()
    metrics = train(cfg, run_dir=tmp_path / "run", data=data)
    run = tmp_path / "run"
    for name in CONTRACT_FILES:
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name

    assert metrics["test_accuracy"] >= 0.75  # chance is 1/3
    assert metrics["test_balanced_accuracy"] >= 0.75
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test_accuracy"] == metrics["test_accuracy"]
    # the baselines fitted on the same split: the summary says so when one beat the network
    assert set(saved["baselines"]) and (saved["baseline_verdict"] is None) == (
        not beating_baselines(saved, regression=False))
    assert np.array(saved["confusion_matrix"]).sum() == 12
    assert saved["n_per_bin_split"] == {"train": [12, 12, 12], "val": [4, 4, 4], "test": [4, 4, 4]}
    assert saved["bin_labels"] == ["10-39", "40-69", "70-100"]
    assert len(saved["test_per_bin_accuracy"]) == 3
    timings = saved["timings"]
    assert timings["backend"] and timings["devices"] and timings["train_volumes_per_s"] > 0
    assert timings["train_seconds"] > 0

    history = pd.read_csv(run / "history.csv")
    assert list(history.columns) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                     "lr", "seconds"]
    assert history["epoch"].tolist() == list(range(1, 21))
    split = pd.read_csv(run / "split.csv")
    assert list(split.columns) == ["subject_id", "age", "bin", "split"]
    assert len(split) == 60
    # data.json (read by nothing) is no longer written; the bins are in metrics.json.
    assert not (run / "data.json").exists()
    assert saved["bin_edges"] == [10, 40, 70, 101]

    # model.keras is the best validation epoch, and it reproduces the reported test accuracy.
    import keras

    model = keras.saving.load_model(run / "model.keras")
    test = data.indices("test")
    predicted = model.predict(data.volumes[test][..., None], verbose=0).argmax(-1)
    assert (predicted == data.labels("test")).mean() == metrics["test_accuracy"]
    predictions = pd.read_csv(run / "test_predictions.csv")
    assert predictions["predicted_bin"].tolist() == predicted.tolist()
    assert predictions["correct"].mean() == metrics["test_accuracy"]
    best = history.loc[history["val_loss"].idxmin(), "epoch"]
    assert metrics["best_epoch"] == best


@pytest.mark.slow
def test_same_seed_gives_the_same_run(tmp_path):
    cfg = compose_train("trainer.epochs=3", "seed=7", "trainer.augment.enabled=true")
    first = train(cfg, run_dir=tmp_path / "a", data=tiny_data())
    second = train(cfg, run_dir=tmp_path / "b", data=tiny_data())
    for key in ("test_accuracy", "confusion_matrix", "best_epoch", "best_monitor_value"):
        assert first[key] == second[key], key
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "history.csv").drop(columns="seconds"),
        pd.read_csv(tmp_path / "b" / "history.csv").drop(columns="seconds"))
    for w1, w2 in zip(_weights(tmp_path / "a" / "model.keras"),
                      _weights(tmp_path / "b" / "model.keras")):
        np.testing.assert_array_equal(w1, w2)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_trains_one_epoch(tmp_path, experiment):
    # The experiment's trainer settings on the tiny network and cohort.
    cfg = compose_train(f"experiment={experiment}", *TINY_MODEL, "trainer.epochs=1", tiny=False)
    train(cfg, run_dir=tmp_path, data=tiny_data())
    runs = sorted(tmp_path.glob("fold*")) or [tmp_path]      # a cross-validating experiment: each fold
    assert len(runs) == (cfg.trainer.cv_folds or 1)
    assert [json.loads((run / "metrics.json").read_text())["epochs_run"] for run in runs] == [1] * len(runs)


@pytest.mark.slow
@pytest.mark.parametrize("option", ["cosine", "class_weights", "mixed_precision"])
def test_training_options_run(tmp_path, option):
    data = tiny_data()
    overrides = {"cosine": ["trainer.lr_schedule=cosine", "trainer.min_lr=1e-5"],
                 "class_weights": ["trainer.monitor=val_accuracy"],
                 "mixed_precision": ["trainer.mixed_precision=true"]}[option]
    if option == "class_weights":
        data.class_weights = {0: 1.0, 1: 2.0, 2: 0.5}
    metrics = train(compose_train("trainer.epochs=2", *overrides), run_dir=tmp_path, data=data)
    history = pd.read_csv(tmp_path / "history.csv")
    assert len(history) == 2 and np.isfinite(history["loss"]).all()
    if option == "cosine":
        assert history["lr"][0] == pytest.approx(1e-3) and history["lr"][1] < 1e-3
    if option == "class_weights":
        assert metrics["class_weights"] == {"0": 1.0, "1": 2.0, "2": 0.5}
        assert metrics["monitor"] == "val_accuracy"
    if option == "mixed_precision":  # float16 needs a GPU; elsewhere the stage falls back
        assert metrics["timings"]["dtype_policy"] == ("mixed_float16" if _has_gpu() else "float32")


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    import keras

    class InterruptAfter(keras.callbacks.Callback):
        def __init__(self, epochs):
            super().__init__()
            self.epochs = epochs

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == self.epochs:
                raise Interrupted

    # Everything with state across epochs: data order and shifts, LR on plateau, early stopping.
    settings = ["trainer.epochs=5", "seed=3", "trainer.augment.enabled=true",
                "trainer.augment.max_shift=1", "trainer.lr_schedule=plateau",
                "trainer.plateau_patience=1", "trainer.early_stopping_patience=3"]
    straight = train(compose_train(*settings), run_dir=tmp_path / "straight", data=tiny_data())

    broken = tmp_path / "broken"
    with pytest.raises(Interrupted):
        train(compose_train(*settings), run_dir=broken, data=tiny_data(),
              callbacks=[InterruptAfter(2)])
    assert not (broken / "metrics.json").exists()
    assert len(pd.read_csv(broken / "history.csv")) == 2
    with pytest.raises(TrainError, match="trainer.resume="):
        train(compose_train(*settings), run_dir=broken, data=tiny_data())

    # The command line of a resume names only the run; its saved config is used.
    resumed = train(compose_train(f"trainer.resume={broken}"), data=tiny_data())
    assert resumed["resumed"] is True
    for key in ("test_accuracy", "confusion_matrix", "best_epoch", "epochs_run", "stopped_early"):
        assert resumed[key] == straight[key], key
    np.testing.assert_allclose(resumed["best_monitor_value"], straight["best_monitor_value"],
                               rtol=1e-6)
    a = pd.read_csv(tmp_path / "straight" / "history.csv").drop(columns="seconds")
    b = pd.read_csv(broken / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(a, b, rtol=1e-6)
    for w1, w2 in zip(_weights(tmp_path / "straight" / "model.keras"),
                      _weights(broken / "model.keras")):
        np.testing.assert_allclose(w1, w2, rtol=1e-5, atol=1e-6)
    with pytest.raises(TrainError, match="already finished"):
        train(compose_train(f"trainer.resume={broken}"), data=tiny_data())


def test_a_used_run_directory_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    with pytest.raises(TrainError, match="metrics.json"):
        train(compose_train(), run_dir=run, data=tiny_data())
    with pytest.raises(TrainError, match="no checkpoint to resume"):
        train(compose_train(f"trainer.resume={tmp_path / 'nothing'}"), data=tiny_data())
    with pytest.raises(TrainError, match="explicit run_dir"):
        train(compose_train(), data=tiny_data())


def test_model_too_small_for_the_grid_is_a_train_error(tmp_path):
    cfg = compose_train("model.widths=[2,4,8]")
    with pytest.raises(TrainError, match="too small for 3 blocks"):
        train(cfg, run_dir=tmp_path / "run", data=tiny_data())


# --------------------------------------------------------------------------- the real data stage

@pytest.mark.slow
def test_train_with_the_data_stage(tmp_path):
    root = write_cohort(tmp_path / "cohort")
    cfg = compose_train(*cohort_overrides(root, tmp_path / "cache"), "trainer.epochs=2")
    metrics = train(cfg, run_dir=tmp_path / "run")
    for name in CONTRACT_FILES:
        assert (tmp_path / "run" / name).is_file(), name
    assert metrics["n_per_bin_split"] == {"train": [4, 4, 4], "val": [2, 2, 2], "test": [2, 2, 2]}
    # The config saved with the run rebuilds its grid and split (what explain relies on).
    saved = OmegaConf.load(tmp_path / "run" / "checkpoint" / "config.yaml")
    again = prepare_data(saved.data, seed=int(saved.seed), progress=False)
    grid = again.grid
    np.testing.assert_allclose(grid.affine, AFFINE)
    assert grid.crop_offset == (1, 2, 1) and grid.source_shape == TRAIN_SOURCE
    split = pd.read_csv(tmp_path / "run" / "split.csv", dtype={"subject_id": str})
    assert split["subject_id"].tolist() == again.split_table()["subject_id"].tolist()
    assert split["split"].tolist() == again.split_table()["split"].tolist()


def _cli(tmp_path, *overrides):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "brainage.train", *TINY_MODEL, *overrides],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["bin_edges", "participants"])
def test_cli_data_error_is_one_line_and_status_2(tmp_path, bad):
    if bad == "bin_edges":
        overrides = ["data.bin_edges=[10]"]
    else:
        overrides = ["data=pac2019", f"data.root={tmp_path / 'missing'}"]
    result = _cli(tmp_path, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr
    assert "error: " in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "model.keras").exists()


@pytest.mark.slow
def test_cli_end_to_end_and_refusal(tmp_path):
    root = write_cohort(tmp_path / "cohort")
    run = tmp_path / "outputs" / "train" / "tiny"
    args = [*cohort_overrides(root, tmp_path / "cache"), "trainer.epochs=2", f"hydra.run.dir={run}"]
    result = _cli(tmp_path, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in CONTRACT_FILES + [".hydra/config.yaml"]:
        assert (run / name).is_file(), name
    assert "seed 000" in result.stdout + result.stderr
    assert latest_run("train", tmp_path / "outputs") == run
    again = _cli(tmp_path, *args)
    assert again.returncode == 2 and "error: " in again.stderr and "Traceback" not in again.stderr


# --------------------------------------------------------------------------- helpers

def test_latest_run_skips_unfinished_runs(tmp_path):
    outputs = tmp_path / "outputs"
    for name, finished in [("2024-01-01_10-00-00", True), ("2024-01-02_10-00-00", True),
                           ("2024-01-03_10-00-00", False)]:
        (outputs / "train" / name).mkdir(parents=True)
        if finished:
            (outputs / "train" / name / "model.keras").write_text("x")
    assert latest_run("train", outputs).name == "2024-01-02_10-00-00"
    with pytest.raises(FileNotFoundError, match="make train"):
        latest_run("train", tmp_path / "elsewhere")

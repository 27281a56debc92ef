"""make train trainer.ensemble=N: N seeds trained as one ensemble run. Every member is a complete
training run of its own in members/<k>_seed<s>/; ensemble.json records them and the ensemble's own
test score; the run directory opens as one ensemble (train_dirs=[run], train_dir=run); bad values
are refused in one line."""
import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from brainage.ensemble.members import open_ensemble
from brainage.errors import ExplainError, TrainError
from brainage.explaining.settings import ExplainSettings
from brainage.predicting.settings import PredictSettings
from brainage.runs import read_record
from brainage.train import train
from brainage.training.checkpoint import check_resumable
from brainage.training.ensemble_run import summarise_ensemble
from brainage.training.settings import TrainSettings
from tests.builders import compose_stage, compose_train, exit_status, tiny_data

SEED = 7
RUN_FILES = ["model.keras", "metrics.json", "history.csv", "split.csv", "grid.json",
             "test_predictions.csv", "training_curves.png", "confusion_matrix.png",
             ".hydra/config.yaml", "checkpoint/config.yaml", "run.json"]


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    """Two members of one epoch on the tiny cohort (one shared split)."""
    run = tmp_path_factory.mktemp("ensemble") / "run"
    cfg = compose_train("trainer.ensemble=2", "trainer.epochs=1", f"seed={SEED}",
                        "trainer.baselines.enabled=false")
    return run, train(cfg, run_dir=run, data=tiny_data())


def _members(run):
    return [run / "members" / f"{k}_seed{SEED + k}" for k in range(2)]


def _weights(path):
    import keras

    return keras.saving.load_model(path, compile=False).get_weights()


@pytest.mark.slow
def test_both_members_are_complete_training_runs_of_their_own_seed(ensemble):
    run, _ = ensemble
    for k, member in enumerate(_members(run)):
        for name in RUN_FILES:
            assert (member / name).is_file(), f"{member}: {name}"
        assert read_record(member).state == "finished"
        saved = OmegaConf.load(member / ".hydra" / "config.yaml")
        assert saved.seed == SEED + k and saved.trainer.ensemble is None
        assert json.loads((member / "metrics.json").read_text())["seed"] == SEED + k
    first, second = (_weights(m / "model.keras") for m in _members(run))
    assert any(not np.array_equal(a, b) for a, b in zip(first, second))  # other seeds, other nets
    assert not (run / "model.keras").exists()


@pytest.mark.slow
def test_ensemble_json_records_members_seeds_and_the_ensembles_own_test_score(ensemble):
    run, summary = ensemble
    record = json.loads((run / "ensemble.json").read_text())
    members = _members(run)
    scores = [json.loads((m / "metrics.json").read_text())["test_accuracy"] for m in members]
    assert record["members"] == [{"path": f"members/{k}_seed{SEED + k}", "seed": SEED + k,
                                  "test_accuracy": scores[k]} for k in range(2)]
    assert record["seeds"] == [SEED, SEED + 1] and record["n_members"] == 2
    assert record["shared_test_split"] is True and record["note"] is None
    tables = [pd.read_csv(m / "test_predictions.csv") for m in members]
    logits = np.stack([t[["logit_0", "logit_1", "logit_2"]].to_numpy(float) for t in tables])
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    by_hand = (probabilities.mean(axis=0).argmax(axis=1) == tables[0]["bin"]).mean()
    assert record["ensemble"] == {"test_accuracy": pytest.approx(by_hand), "n_test": 12}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(summary))
    assert metrics["ensemble_test"] == pytest.approx(by_hand)
    assert metrics["median_member"] == pytest.approx(np.median(scores))
    assert metrics["best_member"]["test_accuracy"] == max(scores)


@pytest.mark.slow
def test_the_run_directory_opens_as_one_ensemble(ensemble, tmp_path):
    run, _ = ensemble
    opened = open_ensemble([run], tmp_path)
    assert opened.dirs == [str(m) for m in _members(run)]
    predict = PredictSettings.from_cfg(compose_stage("predict", f"train_dir={run}"))
    assert predict.train_dirs == (run,) and predict.run.train_dir is None
    explain = ExplainSettings.from_cfg(compose_stage("explain", f"train_dir={run}"))
    assert explain.train_dirs == (str(run),) and explain.run.train_dir is None
    with pytest.raises(ExplainError, match="is an ensemble run, explained in one job"):
        ExplainSettings.from_cfg(compose_stage("explain", f"train_dir={run}", "shard=0/2"))


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_ensemble_sizes_are_one_line_and_status_2(value, tmp_path, capsys):
    from brainage.train import _main

    status = exit_status(_main, compose_train(f"trainer.ensemble={value}"), tmp_path / "run")
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert f"trainer.ensemble={value!r}" in errors[0] or f"trainer.ensemble={value}" in errors[0]
    assert "N >= 2" in errors[0]


def test_one_member_is_one_model_and_ensembles_refuse_folds_and_resume(tmp_path):
    assert not TrainSettings.from_cfg(compose_train("trainer.ensemble=1")).runs_ensemble
    with pytest.raises(TrainError, match="train an ensemble or cross-validate, not both"):
        TrainSettings.from_cfg(compose_train("trainer.ensemble=2", "trainer.cv_folds=2"))
    (tmp_path / "checkpoint").mkdir()
    OmegaConf.save(compose_train("trainer.ensemble=3"), tmp_path / "checkpoint" / "config.yaml")
    with pytest.raises(TrainError, match="resumed member by member"):
        check_resumable(tmp_path)


def _fake_member(directory, task, test_ids, predicted, seed):
    """A member's split.csv, test_predictions.csv and metrics.json, as a finished run has them."""
    directory.mkdir(parents=True)
    ids = [f"s{i}" for i in range(6)]
    split = ["test" if i in test_ids else "train" for i in ids]
    pd.DataFrame({"subject_id": ids, "split": split}).to_csv(directory / "split.csv", index=False)
    tested = [i for i in ids if i in test_ids]
    if task == "regression":
        table = pd.DataFrame({"subject_id": tested, "age": [30.0, 50.0, 70.0],
                              "predicted_age": predicted})
        metrics = {"task": task, "mae": float(np.abs(table["predicted_age"] - table["age"]).mean())}
    else:
        table = pd.DataFrame({"subject_id": tested, "bin": [0, 1, 2]})
        for k in range(3):
            table[f"logit_{k}"] = [row[k] for row in predicted]
        metrics = {"task": task, "test_accuracy": float(
            (np.argmax(predicted, axis=1) == table["bin"]).mean())}
    table.to_csv(directory / "test_predictions.csv", index=False)
    (directory / "metrics.json").write_text(json.dumps(metrics))
    return directory, seed, metrics


def test_an_unshared_test_split_gives_no_ensemble_score(tmp_path):
    members = [_fake_member(tmp_path / "members" / f"{k}_seed{k}", "regression", tests, ages, k)
               for k, (tests, ages) in enumerate([({"s0", "s1", "s2"}, [32.0, 50.0, 60.0]),
                                                  ({"s3", "s4", "s5"}, [30.0, 44.0, 70.0])])]
    metrics = summarise_ensemble(tmp_path, members)
    record = json.loads((tmp_path / "ensemble.json").read_text())
    assert record["shared_test_split"] is False and record["ensemble"] is None
    assert "data.split_seed" in record["note"] and metrics["ensemble_test"] is None
    assert metrics["best_member"] == {"path": "members/1_seed1", "mae": pytest.approx(2.0)}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_shared_test_split_gives_the_ensembles_score(task, tmp_path):
    if task == "regression":  # members err in opposite directions: the mean is right
        predictions = [[34.0, 46.0, 70.0], [26.0, 54.0, 70.0]]
        expected = {"mae": 0.0, "n_test": 3}
    else:  # each member misses one subject; the confident miss of s4 outvotes the other
        predictions = [[[5, 0, 0], [0, 1, 0], [0, 2, 0]], [[0, 1, 0], [0, 5, 0], [0, 0, 1]]]
        expected = {"test_accuracy": pytest.approx(2 / 3), "n_test": 3}
    members = [_fake_member(tmp_path / f"m{k}", task, {"s0", "s2", "s4"}, p, k)
               for k, p in enumerate(predictions)]
    summarise_ensemble(tmp_path, members)
    record = json.loads((tmp_path / "ensemble.json").read_text())
    assert record["shared_test_split"] is True and record["ensemble"] == expected

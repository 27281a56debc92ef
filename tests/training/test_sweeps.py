"""Gathering a training sweep (Hydra multirun) into one table: the library."""
import numpy as np
import pandas as pd
import pytest

from brainage.errors import TrainError
from brainage.training.sweeps import find_runs, gather, summarise, to_markdown, write_sweep_tables
from tests.training.builders import fake_run, fake_sweep


def test_sweep_gathers_every_run_into_one_table(tmp_path):
    sweep = fake_sweep(tmp_path / "multirun" / "train" / "2026-01-01_00-00-00")
    write_sweep_tables(sweep, None, "seed")

    runs = pd.read_csv(sweep / "sweep.csv", dtype={"run": str})
    assert list(runs["run"]) == ["0", "1", "2", "3"]
    assert list(runs.columns[:4]) == ["run", "status", "seed", "model.widths"]
    assert list(runs["status"]) == ["finished"] * 3 + ["unfinished"]
    assert runs["test_accuracy"].tolist()[:3] == [0.6, 0.7, 0.8]
    assert runs.loc[0, "test_acc_bin1"] == 0.5 and runs.loc[0, "train_seconds"] == 10.0
    summary = pd.read_csv(sweep / "sweep_summary.csv")
    assert list(summary["model.widths"]) == ["[4,8]", "[8,16]"]
    assert summary["n"].tolist() == [2, 1]
    assert summary.loc[0, "test_accuracy_mean"] == pytest.approx(0.65)
    assert summary.loc[0, "test_accuracy_sd"] == pytest.approx(np.std([0.6, 0.7], ddof=1))
    md = (sweep / "sweep.md").read_text()
    assert "3 of 4 runs finished" in md
    assert "| run | status | seed | model.widths | test_accuracy |" in md
    assert "| 3 | unfinished | 2 | [8,16] |" in md


def test_tables_go_to_out_and_average_over_the_chosen_override(tmp_path):
    sweep = fake_sweep(tmp_path / "sweep")
    paths = write_sweep_tables(sweep, tmp_path / "tables", "model.widths")
    assert paths["runs"] == tmp_path / "tables" / "sweep.csv" and paths["runs"].is_file()
    assert not (sweep / "sweep.csv").exists()
    summary = pd.read_csv(paths["summary"])
    assert summary["seed"].tolist() == [1, 2] and summary["n"].tolist() == [2, 1]
    assert summary.loc[0, "test_accuracy_mean"] == pytest.approx(0.7)


def test_runs_are_ordered_naturally_and_helper_folders_skipped(tmp_path):
    for num in (10, 2, 1):
        fake_run(tmp_path / str(num), [f"seed={num}"], 0.5)
    (tmp_path / "2" / "checkpoint").mkdir()
    (tmp_path / "2" / "checkpoint" / "metrics.json").write_text("{}")
    assert [p.name for p in find_runs(tmp_path)] == ["1", "2", "10"]


def test_summary_of_unfinished_runs_is_empty():
    table = pd.DataFrame({"run": ["0"], "status": ["unfinished"], "seed": ["1"], "lr": ["0.1"]})
    summary = summarise(table, "seed")
    assert summary.empty and list(summary.columns) == ["lr", "n"]


def test_markdown_keeps_counts_whole_and_escapes_pipes():
    table = pd.DataFrame({"name": ["a|b"], "n": [3.0], "acc": [0.12345]})
    md = to_markdown(table)
    assert "| a\\|b | 3 | 0.1235 |" in md


def test_sweep_of_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(TrainError, match="no training runs under"):
        gather(tmp_path)
    with pytest.raises(TrainError, match="is not a directory"):
        write_sweep_tables(tmp_path / "missing", tmp_path / "out", "seed")
    assert not (tmp_path / "out").exists()  # a refused sweep writes nothing


def test_folds_of_a_cross_validation_run_are_runs_with_their_parents_overrides(tmp_path):
    import json

    from omegaconf import OmegaConf

    sweep = tmp_path / "sweep"
    for num, seed in enumerate((1, 2)):
        parent = sweep / str(num)
        (parent / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.create([f"seed={seed}", "trainer.cv_folds=2"]),
                       parent / ".hydra" / "overrides.yaml")
        for fold in (0, 1):
            (parent / f"fold{fold}").mkdir()
            (parent / f"fold{fold}" / "metrics.json").write_text(json.dumps({
                "test_accuracy": 0.5 + 0.1 * fold + 0.2 * num, "cv_fold": fold,
                "baselines": {"ridge_age_blocks": {"test_accuracy": 0.8}}}))
    assert [p.relative_to(sweep).as_posix() for p in find_runs(sweep)] == [
        "0/fold0", "0/fold1", "1/fold0", "1/fold1"]
    table = gather(sweep)
    assert table["seed"].tolist() == ["1", "1", "2", "2"]
    assert table["cv_fold"].tolist() == [0, 1, 0, 1]
    assert table["baseline_ridge_age_blocks"].tolist() == [0.8] * 4
    summary = summarise(table, "cv_fold")
    assert summary["seed"].tolist() == ["1", "2"] and summary["n"].tolist() == [2, 2]
    assert summary["test_accuracy_mean"].tolist() == pytest.approx([0.55, 0.75])
    assert summary["baseline_ridge_age_blocks_mean"].tolist() == pytest.approx([0.8, 0.8])

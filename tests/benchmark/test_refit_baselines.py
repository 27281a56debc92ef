"""Refitting a run's baselines on its own split reproduces what training recorded (same code)."""
import pytest
from omegaconf import OmegaConf

from brainage.benchmark.refit_baselines import main, refit_run, run_dirs


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_refit_baselines_of_a_run_are_those_it_recorded(task, tmp_path, monkeypatch, capsys):
    from brainage.train import train
    from tests.builders import compose_train, tiny_data

    cfg = compose_train("trainer.epochs=1", "seed=2", f"model.task={task}")
    run = tmp_path / "run"
    train(cfg, run_dir=run, data=tiny_data())
    (run / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")           # as Hydra writes it for a stage
    monkeypatch.setattr("brainage.data.cohort.prepare_data", lambda *args, **kwargs: tiny_data())
    rows = refit_run(run)
    assert len(rows) == (2 if task == "regression" else 4), rows
    for row in rows:
        assert row["score"] == ("mae" if task == "regression" else "test_accuracy")
        assert row["network"] is not None
        assert row["refit"] == pytest.approx(row["recorded"], rel=1e-9), row["baseline"]
    assert run_dirs(run) == [run]
    main(["--train-dir", str(run)])
    assert rows[0]["baseline"] in capsys.readouterr().out

"""Fixtures of the training tests: one tiny run of the training stage, built once per session."""
import pytest


@pytest.fixture(scope="session")
def stage_run(tmp_path_factory):
    """A tiny run of the training stage (precise BN and baselines on, as by default), with the
    split each baseline feature table was fitted on.

    Returns ``run`` (its directory), ``metrics``, ``data`` and ``baseline_splits`` (one
    ``{split: subject ids}`` per call of the baselines' split).
    """
    from brainage.train import train
    from brainage.training.baselines import suite
    from tests.builders import compose_train, tiny_data

    seen = []
    real = suite.split_features

    def spy(features, data):
        by_split = real(features, data)
        ids = data.table["subject_id"].to_numpy()
        seen.append({split: sorted(ids[data.indices(split)]) for split in by_split})
        assert all(len(by_split[s]) == len(seen[-1][s]) for s in by_split)
        return by_split

    run = tmp_path_factory.mktemp("stage_run") / "run"
    data = tiny_data()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suite, "split_features", spy)
        metrics = train(compose_train("trainer.epochs=3", "seed=2"), run_dir=run, data=data)
    return {"run": run, "metrics": metrics, "data": data, "baseline_splits": seen}

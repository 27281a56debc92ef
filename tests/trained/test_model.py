"""The owner of a finished training run: its model and the analyzers of the selected methods."""
import pytest

from brainage.errors import TrainedRunError
from brainage.trained import (
    TrainRunRequest,
    load_analyzers,
    load_model,
    method_configs,
    resolve_train_run,
)
from tests.builders import RUN_CROP, compose_explain


@pytest.fixture(scope="module")
def trained(train_run):
    train = resolve_train_run(TrainRunRequest(train_run["run"], None, train_run["tmp"], {}, "test"))
    return train, load_model(train, tuple(RUN_CROP) + (1,))


def test_the_model_loads_checked_against_the_data(trained):
    train, model = trained
    assert tuple(model.input_shape[1:]) == tuple(RUN_CROP) + (1,)
    with pytest.raises(TrainedRunError, match=r"expects inputs .* but the data are \(1, 2, 3, 1\)"):
        load_model(train, (1, 2, 3, 1))


def test_analyzers_are_built_from_the_methods_parameters(train_run, trained):
    _, model = trained
    methods = method_configs(compose_explain(train_run, "explainer=[dtd,gradient]").explainer)
    analyzers = load_analyzers(model, methods)
    assert set(analyzers) == {"dtd", "gradient"}
    with pytest.raises(TrainedRunError, match="explainer gradient: "):
        load_analyzers(model, {"gradient": {"name": "no_such_method"}})
    with pytest.raises(TrainedRunError, match="no explanation method selected"):
        method_configs(None)

"""All-zero maps are named: a method whose rules pass nothing down (z⁺ at a top layer where every
input lowers the output) leaves a map of zeros for a non-zero output, and the explain stage warns."""
import logging

import keras
import numpy as np
import pandas as pd

from brainage.explaining.combine import warn_empty_maps
from brainage.relevance import make_analyzer


def _age_head():
    """Dense(1) over non-negative activations: weights ≤ 0, a large bias (the mean age) — every input
    lowers the predicted age, as for a young subject's active units."""
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(5, activation="relu", name="dense1")(inputs)
    age = keras.layers.Dense(1, name="age")(hidden)
    model = keras.Model(inputs, age)
    model.get_layer("dense1").set_weights([np.eye(5, dtype="float32"), np.zeros(5, "float32")])
    model.get_layer("age").set_weights([-np.linspace(0.1, 0.5, 5)[:, None].astype("float32"),
                                        np.array([55.0], "float32")])
    return model


def test_dtd_of_an_output_without_positive_contributions_is_all_zero_and_is_named(caplog):
    x = np.random.default_rng(0).uniform(0.1, 1.0, (2, 5)).astype("float32")
    explanation = make_analyzer(_age_head(), "dtd", compile=False).explain(x)
    assert np.all(explanation.outputs > 50) and np.all(explanation.maps == 0)
    table = pd.DataFrame({"subject_id": ["sub-02", "sub-01", "sub-03"], "method": "dtd",
                          "target": "predicted",
                          "output": [*explanation.outputs, 40.0],
                          "relevance_sum": [*explanation.relevance_sum, 40.0]})
    other = table.assign(method="deeplift", relevance_sum=[1.0, 2.0, 0.0], output=[1.0, 2.0, 0.0])
    with caplog.at_level(logging.WARNING, logger="brainage.explaining.combine"):
        found = warn_empty_maps(pd.concat([table, other], ignore_index=True))
    # A zero map of a zero output (deeplift's third row) explains it exactly: not named.
    assert found == {"dtd:predicted": ["sub-01", "sub-02"]}
    assert "dtd:predicted gave an all-zero map for 2 subject(s) (sub-01, sub-02)" in caplog.text


def test_nothing_is_named_when_every_map_carries_its_output(caplog):
    table = pd.DataFrame({"subject_id": ["a", "b"], "method": "dtd", "target": "predicted",
                          "output": [3.0, 1.0], "relevance_sum": [3.0, 1.0 - 1e-7]})
    with caplog.at_level(logging.WARNING, logger="brainage.explaining.combine"):
        assert warn_empty_maps(table) == {}
    assert "all-zero" not in caplog.text

"""Mean ± SE, alone and per group."""
import numpy as np
import pandas as pd
import pytest

from brainage import faithfulness as ff


def test_mean_se():
    assert ff.mean_se([1.0, 3.0, np.nan]) == (2.0, pytest.approx(1.0), 2)
    mean, se, n = ff.mean_se([4.0])
    assert mean == 4.0 and np.isnan(se) and n == 1


def test_mean_se_table_groups_in_order_of_appearance():
    table = pd.DataFrame({"method": ["b", "a", "b", "a", "b"], "step": [0, 0, 0, 0, 1],
                          "drop": [1.0, 2.0, 3.0, np.nan, 5.0], "logit": [1.0, 1.0, 3.0, 3.0, 0.0]})
    out = ff.mean_se_table(table, ["method", "step"], ["drop", "logit"])
    assert list(out.columns) == ["method", "step", "n", "drop", "drop_se", "logit", "logit_se"]
    assert list(zip(out["method"], out["step"])) == [("b", 0), ("a", 0), ("b", 1)]
    assert list(out["n"]) == [2, 2, 1]  # rows per group, NaNs included
    b0 = out.iloc[0]
    assert (b0["drop"], b0["drop_se"]) == (2.0, pytest.approx(1.0))
    assert out.iloc[1]["drop"] == 2.0 and np.isnan(out.iloc[1]["drop_se"])  # one finite value

"""The infer stage reads what the explain stage really writes (a tiny trained CNN, DTD maps)."""
import pandas as pd
import pytest
from omegaconf import OmegaConf

from brainage.infer import infer
from tests.builders import compose_explain, compose_stage
from tests.inference.synthetic_runs import FAST


@pytest.fixture(scope="module")
def explain_run(train_run, tmp_path_factory):
    from brainage.explain import explain

    cfg = compose_explain(train_run, "explainer=[dtd,gradient_x_input]", "subjects=all")
    out = tmp_path_factory.mktemp("explain_for_infer")
    explain(cfg, out)
    (out / ".hydra").mkdir()
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")  # what Hydra writes beside a real run
    return out


@pytest.mark.slow
def test_infer_reads_a_real_explain_run(explain_run, train_run, tmp_path):
    summary = infer(compose_stage("infer", f"explain_dir={explain_run}", *FAST), tmp_path)
    assert summary["methods"] == ["dtd", "gradient_x_input"]
    assert summary["train_dir"] == str(train_run["run"])
    assert summary["design"]["n"] == {"bin0": 8, "bin2": 8}
    assert summary["covariates"]["columns"] == []  # the tiny cohort has no site or sex column
    assert any("no site column" in note for note in summary["covariates"]["notes"])
    table = pd.read_csv(tmp_path / "regions" / "custom_inference.csv")
    assert set(table["region"]) == {"Left_Core", "Top"}
    assert table["p_fwe_adj"].notna().all()
    for method in summary["methods"]:
        assert (tmp_path / summary["voxelwise"][method]["maps"]["t"]).is_file()
    # the network learnt the ageing core: the oldest and youngest bins' DTD shares differ there
    core = table[(table["method"] == "dtd") & (table["region"] == "Left_Core")].iloc[0]
    assert core["p"] < 0.05

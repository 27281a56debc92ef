"""Group designs and the stage's settings: who is compared, and one-line errors for bad requests."""
import numpy as np
import pandas as pd
import pytest

from brainage.errors import InferError
from brainage.inference.designs import CONTINUOUS, TWO_GROUP, DesignSpec, build_design
from brainage.inference.settings import InferSettings
from tests.builders import compose_stage


@pytest.fixture
def subjects():
    return pd.DataFrame({"subject_id": [f"s{i}" for i in range(9)],
                         "age": [20, 25, 30, 45, 50, 55, 75, 80, 85],
                         "bin": [0, 0, 0, 1, 1, 1, 2, 2, 2],
                         "predicted": [0, 1, 0, 1, 1, 2, 2, 1, 2],
                         "gap": [1.0, -2.0, 3.0, np.nan, 0.5, -1.0, 2.0, 4.0, -3.0]})


def test_bins_default_to_youngest_vs_oldest(subjects):
    design = build_design(subjects, DesignSpec("bins", None, "age"))
    assert design.name == "bin2_vs_bin0" and design.kind == TWO_GROUP
    assert design.rows.tolist() == [0, 1, 2, 6, 7, 8]
    assert design.tested.tolist() == [0, 0, 0, 1, 1, 1]
    assert design.group_sizes == (3, 3) and design.summary()["n"] == {"bin0": 3, "bin2": 3}


def test_any_pair_of_bins_in_either_order(subjects):
    design = build_design(subjects, DesignSpec("bins", (2, 1), "age"))
    assert design.name == "bin1_vs_bin2" and design.labels == ("bin2", "bin1")
    assert design.tested[design.rows == 3].tolist() == [1.0]


def test_correct_vs_wrong(subjects):
    design = build_design(subjects, DesignSpec("correct", None, "age"))
    assert design.name == "correct_vs_wrong" and design.group_sizes == (3, 6)
    assert design.tested[[1, 5, 7]].tolist() == [0, 0, 0]


def test_a_column_as_regressor_or_median_split(subjects):
    design = build_design(subjects, DesignSpec("regressor", None, "gap"))
    assert design.kind == CONTINUOUS and design.name == "gap"
    assert 3 not in design.rows.tolist() and len(design.rows) == 8  # the NaN gap is left out
    split = build_design(subjects, DesignSpec("median_split", None, "gap"))
    assert split.name == "high_vs_low_gap" and split.group_sizes == (4, 4)


def test_shuffled_design_keeps_subjects_and_values(subjects):
    design = build_design(subjects, DesignSpec("regressor", None, "age"))
    shuffled = design.shuffled(np.random.default_rng(0))
    assert shuffled.rows.tolist() == design.rows.tolist()
    assert sorted(shuffled.tested) == sorted(design.tested)
    assert shuffled.tested.tolist() != design.tested.tolist()


@pytest.mark.parametrize("spec, message", [
    (DesignSpec("bins", (0, 5), "age"), r"design.groups=\[0, 5\]: bin 5 has no explained subject"),
    (DesignSpec("regressor", None, "brain_gap"), "design.column=brain_gap: no such column"),
    (DesignSpec("regressor", None, "subject_id"), "holds no number"),
])
def test_unknown_groups_and_columns_are_one_line_errors(subjects, spec, message):
    with pytest.raises(InferError, match=message) as info:
        build_design(subjects, spec)
    assert "\n" not in str(info.value)


def test_a_group_of_one_is_refused(subjects):
    one_wrong = subjects.assign(predicted=subjects["bin"])
    one_wrong.loc[0, "predicted"] = 1
    with pytest.raises(InferError, match="group wrong has 1 subject"):
        build_design(one_wrong, DesignSpec("correct", None, "age"))


def test_settings_read_the_yaml_defaults():
    s = InferSettings.from_cfg(compose_stage("infer"))
    assert s.design == DesignSpec("bins", None, "age")
    assert s.measure == "share" and s.covariates == ("site", "sex") and s.explain_dir is None
    assert s.voxelwise.n_perm == 1000 and s.regions.atlases == ("explain",)
    assert s.regions.gm_adjust and s.null_shuffles == 0 and s.needs_grey_matter()


@pytest.mark.parametrize("override, message", [
    ("design.kind=gap", "design.kind='gap'; expected one of bins, correct, regressor"),
    ("design.groups=[1,1]", "expected two different age bins"),
    ("measure=density", "measure='density'"),
    ("covariates=[site,handedness]", "covariates='handedness'"),
    ("voxelwise.n_perm=0", "voxelwise.n_perm=0"),
    ("alpha=5", "alpha=5"),
])
def test_bad_settings_are_one_line_errors(override, message):
    with pytest.raises(InferError, match=message):
        InferSettings.from_cfg(compose_stage("infer", override))

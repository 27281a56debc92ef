"""The rule that picks the default DTD variant, on hand-made scorecards."""
import io

import numpy as np
import pandas as pd
import pytest

from brainage.faithfulness.default_choice import choose_default, is_dtd_variant


def card(*rows):
    """A checked scorecard from ``(method, target, explainer, goals, aopc, auc, conserves,
    randomisation passes)`` tuples."""
    return pd.DataFrame([{"method": m, "target": t, "explainer": e, "goals_met": g, "aopc": a,
                          "loc_auc": u, "pass_conservation": c, "pass_randomisation": r}
                         for m, t, e, g, a, u, c, r in rows])


def test_family_membership():
    assert is_dtd_variant({"method": "dtd", "explainer": "dtd"})
    assert is_dtd_variant({"method": "dtd_w2", "explainer": "dtd_w2"})
    assert is_dtd_variant({"method": "my_reference", "explainer": "dtd_reference"})
    assert is_dtd_variant({"method": "dtd_canonized", "explainer": "dtd"})
    assert not is_dtd_variant({"method": "lrp_composite", "explainer": "lrp_composite"})
    assert not is_dtd_variant({"method": "dtdx", "explainer": "gradient"})


def test_eligible_variants_ranked_by_goals_then_aopc_then_auc():
    choice = choose_default(card(
        ("dtd", "predicted", "dtd", 2, 0.45, 0.58, True, False),  # fails randomisation
        ("dtd", "predicted-vs-mean", "dtd", 4, 0.30, 0.70, True, True),
        ("dtd_w2", "predicted-vs-mean", "dtd_w2", 4, 0.30, 0.80, True, True),  # wins on AUC
        ("dtd_w2", "predicted", "dtd_w2", 3, 0.90, 0.90, True, True),  # fewer goals
        ("lrp_composite", "predicted", "lrp_composite", 3, 1.12, 0.55, False, True),
        ("random", "predicted", "random", 5, 9.0, 1.0, True, True)))  # the floor never counts
    assert (choice.method, choice.target, choice.eligible, choice.goals_met) == \
        ("dtd_w2", "predicted-vs-mean", True, 4)
    assert choice.more_faithful is None
    assert "**dtd_w2** (target predicted-vs-mean), 4 of 5 goals met." in choice.sentence()
    tie = choose_default(card(("dtd", "a", "dtd", 4, 0.3, 0.7, True, True),
                              ("dtd_b", "a", "dtd_b", 4, 0.3, 0.7, True, True)))
    assert tie.method == "dtd"  # a full tie keeps scorecard order
    aopc = choose_default(card(("dtd", "a", "dtd", 4, 0.3, np.nan, True, True),
                               ("dtd_b", "a", "dtd_b", 4, 0.31, 0.1, True, True)))
    assert aopc.method == "dtd_b"


def test_more_goals_do_not_make_an_unconserving_variant_eligible():
    choice = choose_default(card(("dtd_lrp", "predicted", "dtd_lrp", 4, 1.0, 0.9, False, True),
                                 ("dtd", "predicted", "dtd", 2, 0.4, 0.6, True, True)))
    assert (choice.method, choice.eligible) == ("dtd", True)


def test_without_an_eligible_variant_the_least_bad_is_named_as_such():
    choice = choose_default(card(("dtd", "predicted", "dtd", 2, 0.45, 0.58, True, False),
                                 ("dtd_w2", "predicted", "dtd_w2", 2, 0.46, 0.58, True, False)))
    assert (choice.method, choice.eligible) == ("dtd_w2", False)
    assert "least bad, not a faithful one" in choice.sentence()


def test_a_method_outside_the_family_that_beats_every_variant_is_reported():
    rows = [("dtd", "predicted", "dtd", 3, 0.45, 0.58, True, True),
            ("smoothgrad", "predicted", "smoothgrad", 3, 0.50, 0.80, np.nan, True),
            ("lrp_composite", "predicted", "lrp_composite", 3, 1.12, 0.55, False, True)]
    choice = choose_default(card(*rows))
    assert choice.method == "dtd"
    assert choice.more_faithful["method"] == "lrp_composite"  # same goals, higher AOPC
    assert "**lrp_composite** (target predicted, 3 goals, AOPC 1.120) is more faithful than " \
           "every DTD variant" in choice.sentence()
    equal = choose_default(card(rows[0], ("gradient", "predicted", "gradient", 3, 0.45, 0.58,
                                          np.nan, True)))
    assert equal.more_faithful is None  # an equal key does not beat


def test_no_dtd_variant_scored():
    choice = choose_default(card(("gradcam", "predicted", "gradcam", 1, 0.0, 0.5, np.nan, True)))
    assert choice.method is None and "No DTD variant was scored" in choice.sentence()
    assert choice.more_faithful["method"] == "gradcam"


def test_rule_reads_a_scorecard_written_to_csv():
    written = card(("dtd", "predicted", "dtd", 3, 0.4, np.nan, True, np.nan),
                   ("dtd_w2", "predicted", "dtd_w2", 3, 0.5, 0.6, True, True))
    buffer = io.StringIO()
    written.to_csv(buffer, index=False)
    read = pd.read_csv(io.StringIO(buffer.getvalue()))
    choice = choose_default(read)
    assert (choice.method, choice.eligible) == ("dtd_w2", True)


@pytest.mark.parametrize("goals", [0, 5])
def test_goal_count_is_reported(goals):
    choice = choose_default(card(("dtd", "true", "dtd", goals, 0.1, 0.5, True, True)))
    assert choice.goals_met == goals and choice.target == "true"

"""Which DTD variant ``make explain`` should use by default: the one that wins the scorecard.

The rule, a pure function of a checked scorecard
(:func:`~brainage.faithfulness.checks.apply_checks`; one model's or the mean over several):

1. The **DTD family** is every row whose method or explainer is ``dtd`` or starts with ``dtd_``
   (``dtd``, ``dtd_w2``, ``dtd_canonized``, contrastive and reference-rooted DTD), in any target
   mode. The random floor never counts.
2. **Eligible** are the DTD rows that pass both the conservation and the randomisation check.
3. Eligible rows are ranked by the number of goals met, then AOPC, then ground-truth AUC (higher
   first; a missing number ranks last; remaining ties keep scorecard order). The first is the
   default. If no DTD row is eligible, the same ranking over all DTD rows picks the least bad one
   and the choice says it is not eligible.
4. A method **outside the DTD family beats every DTD variant** when its rank key (goals met, AOPC,
   AUC) is greater than that of every DTD row; the best such row is reported, and the report must
   then say plainly that it is more faithful than the default.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

FLOOR = "random"


def is_dtd_variant(row) -> bool:
    """Whether a scorecard row (a mapping with ``method`` and ``explainer``) is a DTD variant."""
    names = (str(row.get("method", "")), str(row.get("explainer", "")))
    return any(n == "dtd" or n.startswith("dtd_") for n in names)


def rank_key(row) -> tuple:
    """``(goals met, AOPC, AUC)``, missing numbers as −∞: larger is better."""
    def number(key):
        value = row.get(key)
        return -math.inf if value is None or pd.isna(value) else float(value)

    return number("goals_met"), number("aopc"), number("loc_auc")


@dataclass(frozen=True)
class DefaultChoice:
    """The chosen DTD variant and whether a method outside the family beats every variant.

    Attributes
    ----------
    method, target : str or None
        The default DTD variant (None: no DTD variant was scored).
    eligible : bool
        It passes the conservation and randomisation checks.
    goals_met : int
    more_faithful : dict or None
        ``{"method", "target", "goals_met", "aopc", "loc_auc"}`` of the best non-DTD row when it
        beats every DTD variant, else None.
    """

    method: str | None
    target: str | None
    eligible: bool
    goals_met: int
    more_faithful: dict | None

    def sentence(self, goals: int = 5) -> str:
        """The choice in one or two plain sentences, for the verdict and the report (``goals``:
        how many checks apply, 4 for an age regressor whose class maps are not applicable)."""
        if self.method is None:
            return "No DTD variant was scored, so no default DTD variant can be chosen."
        text = (f"Default DTD variant by the scorecard rule: **{self.method}** (target "
                f"{self.target}), {self.goals_met} of {goals} goals met")
        text += "." if self.eligible else (
            "; no DTD variant passes both the conservation and the randomisation check, so "
            "this is the least bad, not a faithful one.")
        if self.more_faithful:
            m = self.more_faithful
            text += (f" **{m['method']}** (target {m['target']}, {m['goals_met']} goals, AOPC "
                     f"{m['aopc']:.3f}) is more faithful than every DTD variant.")
        return text


def choose_default(card: pd.DataFrame) -> DefaultChoice:
    """Apply the rule of this module to a checked scorecard (rows with ``pass_*``, ``goals_met``)."""
    rows = [row for _, row in card.iterrows() if row["method"] != FLOOR]
    family = [row for row in rows if is_dtd_variant(row)]
    if not family:
        return DefaultChoice(None, None, False, 0, _best_outsider(rows, None))
    eligible = [row for row in family
                if _passed(row, "pass_conservation") and _passed(row, "pass_randomisation")]
    best = max(eligible or family, key=rank_key)  # max keeps the first of equal keys
    top_dtd = max(rank_key(row) for row in family)
    return DefaultChoice(str(best["method"]), str(best["target"]), bool(eligible),
                         int(best["goals_met"]), _best_outsider(rows, top_dtd))


def _passed(row, column: str) -> bool:
    value = row.get(column)
    return bool(value) if value is not None and not pd.isna(value) else False


def _best_outsider(rows: list, top_dtd: tuple | None) -> dict | None:
    """The best non-DTD row when its key beats ``top_dtd`` (every DTD row's key), else None."""
    outsiders = [row for row in rows if not is_dtd_variant(row)]
    if not outsiders:
        return None
    best = max(outsiders, key=rank_key)
    if top_dtd is not None and rank_key(best) <= top_dtd:
        return None
    return {"method": str(best["method"]), "target": str(best["target"]),
            "goals_met": int(best["goals_met"]), "aopc": float(best["aopc"]),
            "loc_auc": float(best["loc_auc"]) if pd.notna(best["loc_auc"]) else float("nan")}

"""Error control shown, not assumed: the same tests under shuffled labels.

Each shuffle permutes the tested variable over the tested subjects (covariates stay with their
subjects), so every difference it finds is a false positive. The null rate of a family of tests
(a method's voxels, or its regions of one atlas, raw or GM-adjusted) is the share of shuffles with
any member significant at the family level used; FWE control keeps it at most that level. The rate
over all families of the run (``any``/``any``) is what ``fwe_scope=run`` keeps at ``alpha``. The
95 % Clopper–Pearson interval says how much a few dozen shuffles can tell.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

ANY = "any"


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple:
    """Exact binomial interval of a rate of ``k`` in ``n``."""
    tail = (1.0 - level) / 2.0
    lo = float(stats.beta.ppf(tail, k, n - k + 1)) if k > 0 else 0.0
    hi = float(stats.beta.ppf(1.0 - tail, k + 1, n - k)) if k < n else 1.0
    return lo, hi


def run_shuffles(design, n_shuffles: int, seed: int, test) -> pd.DataFrame:
    """``test(shuffled_design, permutation_seed) -> {(method, family): min p_fwe}`` per shuffle.

    Returns one row per shuffle, method and family: ``shuffle``, ``method``, ``family``,
    ``min_p_fwe``.
    """
    rng = np.random.default_rng([seed, 1])  # a stream apart from the permutations' seeds
    rows = []
    for s in range(n_shuffles):
        for (method, family), min_p in test(design.shuffled(rng), seed + 1 + s).items():
            rows.append({"shuffle": s, "method": method, "family": family, "min_p_fwe": min_p})
    return pd.DataFrame(rows, columns=["shuffle", "method", "family", "min_p_fwe"])


def null_rates(shuffles: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per method and family, and over all families (``any``): shuffles with a FWE hit.

    Returns ``method``, ``family``, ``shuffles``, ``with_hit``, ``rate``, ``rate_lo``, ``rate_hi``.
    """
    hits = shuffles.assign(hit=shuffles["min_p_fwe"] <= alpha)
    per_family = hits.groupby(["method", "family"], sort=False)["hit"].agg(["size", "sum"])
    per_method = hits.groupby(["method", "shuffle"], sort=False)["hit"].any() \
        .groupby("method", sort=False).agg(["size", "sum"])
    overall = hits.groupby("shuffle")["hit"].any().agg(["size", "sum"])
    rows = [(m, f, n, k) for (m, f), (n, k) in per_family.iterrows()]
    rows += [(m, ANY, n, k) for m, (n, k) in per_method.iterrows()]
    rows.append((ANY, ANY, int(overall["size"]), int(overall["sum"])))
    out = pd.DataFrame(rows, columns=["method", "family", "shuffles", "with_hit"])
    out["rate"] = out["with_hit"] / out["shuffles"]
    bounds = [clopper_pearson(int(k), int(n)) for n, k in zip(out["shuffles"], out["with_hit"])]
    out["rate_lo"], out["rate_hi"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return out

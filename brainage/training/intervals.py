"""Uncertainty of an accuracy measured on a few subjects: Wilson score intervals.

A test split of 36 subjects moves the accuracy by 2.8 points per subject; the normal
approximation (p ± z·sqrt(p(1-p)/n)) is poor there and absurd at 0 or n correct. The Wilson
interval inverts the score test, ``|p̂ - p| <= z·sqrt(p(1 - p)/n)``, and stays inside [0, 1]
(Wilson 1927; recommended for small n by Brown, Cai & DasGupta 2001, Statistical Science 16:101).
"""
from __future__ import annotations

import math
from statistics import NormalDist

CONFIDENCE = 0.95
METHOD = "wilson"


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE):
    """``[low, high]`` of the Wilson score interval for ``successes`` of ``n``; None when n is 0.

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(32, 36)]
    [0.7469, 0.9559]
    """
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes of {n} trials")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0 or n successes the bound is exactly 0 or 1 (rounding would leave a hair off).
    low = 0.0 if successes == 0 else max(centre - half, 0.0)
    high = 1.0 if successes == n else min(centre + half, 1.0)
    return [low, high]

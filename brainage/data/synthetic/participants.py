"""Who is in a synthetic cohort: ages from a chosen distribution, sex, site and each site's effects."""
from __future__ import annotations

import numpy as np
import pandas as pd

AGE_BIN_EDGES = (40.0, 70.0)
"""Inner edges of the three age bins used by the ``pac2019`` and ``balanced`` distributions."""
PAC2019_BIN_PROPORTIONS = (0.657, 0.300, 0.043)
"""Share of PAC 2019 training subjects aged 17-39, 40-69 and 70-90."""
AGE_DISTRIBUTIONS = ("pac2019", "uniform", "balanced")


def _bin_counts(n: int, proportions) -> np.ndarray:
    """Integer counts summing to ``n`` closest to ``n * proportions`` (largest remainder)."""
    raw = n * np.asarray(proportions, dtype=np.float64)
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def sample_ages(n: int, distribution: str, rng: np.random.Generator, age_min: float = 17.0,
                age_max: float = 90.0) -> np.ndarray:
    """Ages (years, to 0.1) of ``n`` subjects in random order.

    Parameters
    ----------
    n : int
    distribution : {"pac2019", "uniform", "balanced"}
        See :class:`~brainage.data.synthetic.settings.SyntheticSettings`.
    rng : numpy Generator
    age_min, age_max : float

    Returns
    -------
    float64 array of length ``n``.
    """
    if distribution == "uniform":
        ages = rng.uniform(age_min, age_max, size=n)
    elif distribution in ("pac2019", "balanced"):
        proportions = PAC2019_BIN_PROPORTIONS if distribution == "pac2019" else (1 / 3,) * 3
        edges = (age_min,) + AGE_BIN_EDGES + (age_max,)
        counts = _bin_counts(n, proportions)
        ages = np.concatenate([rng.uniform(lo, hi, size=c) for lo, hi, c in zip(edges, edges[1:], counts)])
        ages = rng.permutation(ages)
    else:
        raise ValueError(f"age distribution {distribution!r}: expected one of {AGE_DISTRIBUTIONS}")
    # Truncating to 0.1 year keeps every age inside its bin.
    return np.clip(np.floor(ages * 10.0) / 10.0, age_min, age_max)


def draw_participants(n: int, settings, ages=None) -> tuple[pd.DataFrame, list]:
    """The participants table and the sites' effects, drawn from ``settings.seed``.

    Parameters
    ----------
    n : int
        Number of subjects.
    settings : SyntheticSettings
    ages : sequence of float or None
        Explicit ages; default drawn from ``settings.age_distribution``.

    Returns
    -------
    table : DataFrame
        ``subject_id`` (``sub-0001``...), ``age``, ``sex`` (F/M), ``site`` (0-based); with a plant
        (``settings.planted``) also ``ageing_age``, the nuisance age that drives the ageing model:
        drawn like ``age`` but from its own seed, so independent of it.
    sites : list of dict
        Per site: intensity ``scale`` and ``offset``, extra smoothing ``fwhm_mm``.
    """
    s = settings
    rng = np.random.default_rng(np.random.SeedSequence(s.seed, spawn_key=(0,)))
    if ages is None:
        ages = sample_ages(n, s.age_distribution, rng, s.age_min, s.age_max)
    sex = rng.choice(np.array(["F", "M"]), size=n)
    site = rng.integers(0, s.n_sites, size=n)
    site_rng = np.random.default_rng(np.random.SeedSequence(s.seed, spawn_key=(1,)))
    sites = [
        {"scale": float(1.0 + s.site_scale_sd * site_rng.standard_normal()),
         "offset": float(s.site_offset_sd * site_rng.standard_normal()),
         "fwhm_mm": float(s.site_fwhm_mm * site_rng.uniform())}
        for _ in range(s.n_sites)
    ]
    width = max(4, len(str(n)))
    table = pd.DataFrame({
        "subject_id": [f"sub-{i:0{width}d}" for i in range(1, n + 1)],
        "age": np.asarray(ages, dtype=np.float64),
        "sex": sex,
        "site": site.astype(int),
    })
    if s.planted is not None:
        ageing_rng = np.random.default_rng(np.random.SeedSequence(s.seed, spawn_key=(3,)))
        table["ageing_age"] = sample_ages(n, s.age_distribution, ageing_rng, s.age_min, s.age_max)
    return table, sites

"""The literature ageing model: age curves, the regional pattern and the ventricles' growth.

With ``a`` the age and ``l(x, a)`` the relative grey-matter loss of voxel ``x`` since age 20,
``l(x, a) = effect_scale * f(x) * L(a)``: ``f`` is the factor of the voxel's region
(:data:`REGION_EFFECTS`) and ``L`` a cumulative age curve (:data:`CURVES`) whose yearly rate rises
smoothly from a young to an old rate (a softplus, so the decline accelerates after ~60-65).
The curves give a whole-brain GM loss of 0.81 %/yr at 65-82 (Crivello et al. 2014, PLoS ONE
9:e114478: ~0.8 %/yr) and 0.37 %/yr at 20-40, 30 % in all from 20 to 85. Regional factors follow
Crivello et al. 2014 (fastest loss in frontal, insular, parietal, temporal cortex, middle occipital
gyri) and Raz et al. 2005 (Cerebral Cortex 15:1676: caudate, cerebellum, hippocampus and
association cortices shrink; **primary visual (calcarine) cortex does not change** — factor 0, a
negative control for explanations). Hippocampus/amygdala and cerebellum follow a more strongly
accelerating curve (Raz et al. 2005; Walhovd et al. 2011, Neurobiology of Aging 32:916), and so
does the outward growth of the ventricle walls.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_AGES = (20.0, 85.0)
"""The ground-truth effect map is expected GM at ``REFERENCE_AGES[1]`` minus at ``REFERENCE_AGES[0]``."""

REFERENCES = (
    "Crivello F, et al. (2014) Longitudinal assessment of global and regional atrophy rates in "
    "healthy elderly. PLoS ONE 9:e114478.",
    "Raz N, et al. (2005) Regional brain changes in aging healthy adults: general trends, individual "
    "differences and modifiers. Cerebral Cortex 15:1676-1689.",
    "Walhovd KB, et al. (2011) Consistent neuroanatomical age-related volume differences across "
    "multiple samples. Neurobiology of Aging 32:916-932.",
)


@dataclass(frozen=True)
class AgeCurve:
    """Cumulative relative GM loss since ``REFERENCE_AGES[0]`` whose yearly rate rises with age.

    The rate is ``rate_young + (rate_old - rate_young) * sigmoid((age - onset) / width)``; its integral
    is closed-form (softplus), so the curve is exact and cheap.

    Parameters
    ----------
    rate_young, rate_old : float
        Yearly fractional loss long before and long after ``onset``.
    onset, width : float
        Age (years) where the rate is half-way, and how fast it changes (years).
    """

    rate_young: float
    rate_old: float
    onset: float
    width: float

    def loss(self, age) -> np.ndarray:
        """Fractional loss at ``age`` relative to age 20 (negative below 20)."""
        age = np.asarray(age, dtype=np.float64)

        def softplus(t):
            return np.logaddexp(0.0, t)

        ref = REFERENCE_AGES[0]
        extra = (self.rate_old - self.rate_young) * self.width * (
            softplus((age - self.onset) / self.width) - softplus((ref - self.onset) / self.width)
        )
        return self.rate_young * (age - ref) + extra

    def rate(self, age) -> np.ndarray:
        """Yearly fractional loss at ``age``."""
        s = 1.0 / (1.0 + np.exp(-(np.asarray(age, dtype=np.float64) - self.onset) / self.width))
        return self.rate_young + (self.rate_old - self.rate_young) * s


CURVES = {
    # Grey matter in general: 0.3 %/yr in young adults, 0.45 %/yr after 60; with the regional factors,
    # thinning and the accelerating regions, whole-brain GM falls ~0.37 %/yr at 20-40 and ~0.81 %/yr
    # at 65-82 (Crivello 2014: ~0.8 %/yr) -- see ground_truth/age_curves.csv.
    "cortical": AgeCurve(rate_young=0.003, rate_old=0.0045, onset=60.0, width=5.0),
    # Hippocampus, amygdala, cerebellum and the ventricles: little change until ~60, then steep
    # (Raz 2005: hippocampal and cerebellar shrinkage accelerate; Walhovd 2011).
    "accelerating": AgeCurve(rate_young=0.001, rate_old=0.012, onset=65.0, width=5.0),
}


@dataclass(frozen=True)
class RegionEffect:
    """Age effect of a group of Neuromorphometrics regions.

    Parameters
    ----------
    group : str
        Name of the group (written to ``regions.csv``).
    tokens : tuple of str
        Neuromorphometrics abbreviations/words that select the regions (``"SFG"``, ``"Hippocampus"``).
    factor : float
        Multiplier of the age curve (0 = no ageing).
    curve : str
        Key of :data:`CURVES`.
    role : str
        ``ageing`` or ``control`` (expected not to change).
    cortex : bool
        Neocortical ribbon: thinning applies.
    """

    group: str
    tokens: tuple
    factor: float
    curve: str
    role: str = "ageing"
    cortex: bool = True


REGION_EFFECTS = (
    RegionEffect("frontal", ("SFG", "MSFG", "MFG", "FRP", "OpIFG", "TrIFG", "OrIFG", "AOrG", "LOrG",
                             "MOrG", "POrG", "GRe", "MFC", "FO", "SCA"), 1.4, "cortical"),
    RegionEffect("insula", ("AIns", "PIns", "CO"), 1.4, "cortical"),
    RegionEffect("temporal", ("STG", "MTG", "ITG", "TMP", "PP", "PT", "TTG", "FuG"), 1.2, "cortical"),
    RegionEffect("parietal", ("SPL", "SMG", "AnG", "PCu", "PoG", "MPoG", "PO"), 1.2, "cortical"),
    RegionEffect("cingulate", ("ACgG", "MCgG", "PCgG"), 1.1, "cortical"),
    RegionEffect("motor", ("PrG", "MPrG", "SMC"), 0.9, "cortical"),
    RegionEffect("middle_occipital", ("MOG",), 1.2, "cortical"),
    RegionEffect("other_occipital", ("SOG", "IOG", "OFuG", "LiG", "Cun", "OCP"), 0.6, "cortical"),
    RegionEffect("primary_visual", ("Calc",), 0.0, "cortical", role="control"),
    RegionEffect("medial_temporal", ("Hippocampus", "Amygdala", "Ent", "PHG"), 1.0, "accelerating",
                 cortex=False),
    RegionEffect("thalamus", ("Thalamus",), 1.3, "cortical", cortex=False),
    RegionEffect("caudate", ("Caudate",), 1.5, "cortical", cortex=False),
    RegionEffect("striatum", ("Putamen", "Pallidum", "Accumbens"), 1.0, "cortical", cortex=False),
    RegionEffect("cerebellum", ("Cerebellum_Exterior", "Cerebellar_Vermal"), 0.9, "accelerating",
                 cortex=False),
)
DEFAULT_EFFECT = RegionEffect("other", (), 0.5, "cortical", cortex=False)
"""Effect of GM regions not named above (brain stem, basal forebrain, ventral diencephalon)."""


def region_effect(name: str) -> RegionEffect:
    """The effect of the Neuromorphometrics region ``name``: the first group with one of its tokens.

    Parameters
    ----------
    name : str
        Neuromorphometrics label name, e.g. ``"Left_SFG_superior_frontal_gyrus"``.

    Returns
    -------
    RegionEffect
        :data:`DEFAULT_EFFECT` when no group names the region.
    """
    for effect in REGION_EFFECTS:
        for token in effect.tokens:
            if f"_{token}_" in f"_{name}_":
                return effect
    return DEFAULT_EFFECT


def ventricle_displacement_mm(age, settings) -> np.ndarray:
    """Outward shift (mm) of the ventricle walls at ``age`` relative to age 20.

    Parameters
    ----------
    age : float or array
    settings : SyntheticSettings
        ``effect_scale`` and ``ventricle_expansion_mm`` (the shift at 85).

    Returns
    -------
    float array like ``age``.
    """
    curve = CURVES["accelerating"]
    return (settings.effect_scale * settings.ventricle_expansion_mm
            * curve.loss(age) / curve.loss(REFERENCE_AGES[1]))

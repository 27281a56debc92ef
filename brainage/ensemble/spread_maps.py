"""How an ensemble's spread maps are named and displayed beside its mean map.

A mean map ``<subject>_<method>_<tag>.nii.gz`` has two companions on the same grid and header:
``<tag>_sd`` (per voxel the SD of the members' relevance, displayed as the maps are) and
``<tag>_agreement`` (the share of members whose relevance has the mean's sign, displayed 0–1
whatever the data: a share is read on one fixed scale).
"""
from __future__ import annotations

from brainage.neuro.nifti import DisplayRange

AGREEMENT_RANGE = DisplayRange(0.0, 1.0, False)


def sd_tag(tag: str) -> str:
    """The file tag of the SD map beside the mean map tagged ``tag``."""
    return f"{tag}_sd"


def agreement_tag(tag: str) -> str:
    """The file tag of the sign-agreement map beside the mean map tagged ``tag``."""
    return f"{tag}_agreement"

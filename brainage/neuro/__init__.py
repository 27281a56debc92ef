"""Spatial neuroimaging: the cohort grid (crop/uncrop), NIfTI relevance maps, atlases, region tables.

The lowest domain layer: it knows images, affines and atlases, and nothing of cohorts, models or
stages (``brainage.data`` builds on it, never the other way round).
"""

"""Ensembles of finished training runs: members, combined predictions and maps, and the reliability of their findings.

* :mod:`~brainage.ensemble.reliability` — ICC of regional relevance across members, region tables
  (mean ± SD, rank stability) and the regions whose relevance is not reliable.
"""

"""Ensembles of finished training runs: members, combined predictions and maps, and the reliability of their findings.

* :mod:`~brainage.ensemble.members` — a list of finished training runs (or a sweep folder) opened
  as one ensemble, members of another task, grid, bins or without a correction refused.
* :mod:`~brainage.ensemble.combine` — the ensemble's prediction (mean probabilities, mean age),
  the spread across members, and the mean, SD and sign-agreement maps.
* :mod:`~brainage.ensemble.one_model` — the members predicting and explaining as one model (the
  mean probabilities or age; every member explaining the ensemble's target, the mean map).
* :mod:`~brainage.ensemble.loading` — every member's model and analyzers loaded as one model.
* :mod:`~brainage.ensemble.test_score` — the ensemble's own test score from its members' test
  predictions.
* :mod:`~brainage.ensemble.correction` — the ensemble's age-bias correction.
* :mod:`~brainage.ensemble.spread_maps` — the names and display ranges of the SD and agreement maps.
* :mod:`~brainage.ensemble.reliability` — ICC of regional relevance across members, region tables
  (mean ± SD, rank stability) and the regions whose relevance is not reliable.
"""

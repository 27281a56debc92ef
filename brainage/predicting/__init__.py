"""A finished training run applied to a whole cohort (``make predict``), bottom up:

* :mod:`~brainage.predicting.settings` — ``configs/predict.yaml`` read once;
* :mod:`~brainage.predicting.methods` — which explanation method draws the maps;
* :mod:`~brainage.predicting.grid_check` — the cohort against the grid, voxel size and
  preprocessing the model was trained on;
* :mod:`~brainage.predicting.cohort` — the cohort read whole through the training run's data
  config, and who of it was in the training run's split;
* :mod:`~brainage.predicting.table` — ``predictions.csv`` and the accuracy where ages are known;
* :mod:`~brainage.predicting.maps` — the outputs of every subject and a map per subject;
* :mod:`~brainage.predicting.run` — the whole run;
* :mod:`~brainage.predicting.ensemble_table`, :mod:`~brainage.predicting.ensemble_maps`,
  :mod:`~brainage.predicting.ensemble_run` — the same for an ensemble of runs (``train_dirs``):
  its table with each subject's spread, its one pass over the cohort with the mean, SD and
  agreement maps, and the whole run.
"""

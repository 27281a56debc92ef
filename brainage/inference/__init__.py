"""Group inference on relevance maps: which voxels and atlas regions differ between groups.

One concern per module: :mod:`~brainage.inference.settings` (the stage's typed settings),
:mod:`~brainage.inference.explain_run` (reading an explain run), :mod:`~brainage.inference.designs`
(who is compared with whom), :mod:`~brainage.inference.grey_matter` (GM images of the subjects),
:mod:`~brainage.inference.covariates` (nuisance columns), :mod:`~brainage.inference.relevance_data`
(subjects × voxels and subjects × regions), :mod:`~brainage.inference.linear_model` (residuals and t),
:mod:`~brainage.inference.effect_size`, :mod:`~brainage.inference.voxel_tests`,
:mod:`~brainage.inference.region_tests`, :mod:`~brainage.inference.stat_maps`,
:mod:`~brainage.inference.null_check`, :mod:`~brainage.inference.ground_truth`,
:mod:`~brainage.inference.predictions` (an age regressor's predicted age and corrected gap),
:mod:`~brainage.inference.analysis` (the whole run).
"""

"""Raw T1-weighted scans to the grey-matter maps the data stage reads (``make preprocess``).

:mod:`~brainage.preprocessing.steps` turns one T1 image into grey matter on the 1.5 mm MNI grid
(ANTsPy: N4, registration, Atropos). Around it: :mod:`~brainage.preprocessing.settings` (the
config), :mod:`~brainage.preprocessing.bids` (the raw table and each subject's T1),
:mod:`~brainage.preprocessing.subject` (one subject in a worker, written whole or not at all),
:mod:`~brainage.preprocessing.runner` (worker processes, progress, the bad-subject policy),
:mod:`~brainage.preprocessing.qc` and :mod:`~brainage.preprocessing.report` (robust z-score flags,
pictures, report.html), :mod:`~brainage.preprocessing.outputs` (the derivative's tables) and
:mod:`~brainage.preprocessing.pipeline` (the stage's work). Where the derivative lives and how its
files are named is :mod:`brainage.data.derivative`, below both this package and the data format
that reads it.
"""

"""Raw T1-weighted scans to the grey-matter maps the data stage reads (``make preprocess``).

:mod:`~brainage.preprocessing.derivative` says where the BIDS derivative made from a raw root
lives and how its files are named; :mod:`~brainage.preprocessing.steps` turns one T1 image into
grey matter on the 1.5 mm MNI grid (ANTsPy: N4, registration, Atropos).
"""

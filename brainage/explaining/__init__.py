"""Explaining a finished training run: which run, which subjects, batches of maps, shards, tables.

Modules, bottom up (the training run itself: :mod:`brainage.trained`):

* :mod:`~brainage.explaining.method_checks` — each method's evaluate verdict, for the maps;
* :mod:`~brainage.explaining.targets` — which logit a map explains and the tag its file carries;
* :mod:`~brainage.explaining.settings` — the explain stage's settings (``ExplainSettings``);
* :mod:`~brainage.explaining.atlas_index` — the atlas on the cohort grid, for region sums;
* :mod:`~brainage.explaining.parts` — a part of a run: rows and group sums of some batches;
* :mod:`~brainage.explaining.batches` — explaining batches of subjects into maps and a part;
* :mod:`~brainage.explaining.combine` — parts into tables, group maps, figures, report, summary;
* :mod:`~brainage.explaining.shards` — a shard: a deterministic part, written for a merge;
* :mod:`~brainage.explaining.merge` — finding, checking and merging shards.
"""

"""Every configured baseline fitted on a run's split: the ``baselines`` of ``metrics.json``."""
from __future__ import annotations

import logging
import time

from brainage.training.baselines.catalogue import BASELINES
from brainage.training.baselines.features import atlas_on_grid, feature_tables
from brainage.training.baselines.models import fit_baseline, split_features
from brainage.training.baselines.settings import BaselineSettings

log = logging.getLogger(__name__)


def fit_baselines(settings: BaselineSettings, data, task: str = "classification") -> dict:
    """``{name: entry}`` for each of ``settings.models`` (empty when baselines are off).

    For a regression run (``task``) only the baselines that predict age are fitted, their penalty
    chosen by the validation MAE, and each entry has the test ``mae`` (years).

    ``data`` is the run's :class:`~brainage.data.prepared.PreparedData`: the same subjects in
    the same train/validation/test split as the network.

    Raises
    ------
    TrainError
        The atlas of the region baselines cannot be read or does not overlap the grid.
    """
    if not settings.enabled or not settings.models:
        return {}
    start = time.perf_counter()
    baselines = [BASELINES[name] for name in settings.models]
    if task == "regression":
        skipped = [b.name for b in baselines if b.target != "age"]
        if skipped:
            log.info("regression run: baselines %s predict bins, not age; skipped",
                     ", ".join(skipped))
        baselines = [b for b in baselines if b.target == "age"]
        if not baselines:
            return {}
    kinds = sorted({b.features for b in baselines})
    regions = atlas_on_grid(settings.atlas, data.grid) if "regions" in kinds else None
    features = feature_tables(data.volumes, kinds, settings.block_size, regions)
    log.info("baseline features in %.1f s: %s", time.perf_counter() - start,
             ", ".join(f"{k} {features[k].shape[1]}" for k in kinds))
    by_split = {kind: split_features(features[kind], data) for kind in kinds}
    results = {}
    for baseline in baselines:
        penalties = settings.ridge_alphas if baseline.target == "age" else settings.logistic_cs
        entry = {"n_features": int(features[baseline.features].shape[1]),
                 **fit_baseline(baseline, by_split[baseline.features], data, penalties,
                                by_mae=task == "regression")}
        if baseline.features == "blocks":
            entry["block_size"] = settings.block_size
        else:
            entry["atlas"], entry["n_regions"] = settings.atlas, len(regions.labels)
        if entry["penalty"]["at_grid_edge"]:
            log.warning("baseline %s: the chosen %s=%g is at the edge of the grid tried",
                        baseline.name, entry["penalty"]["name"], entry["penalty"]["value"])
        results[baseline.name] = entry
    log.info("baselines fitted in %.1f s", time.perf_counter() - start)
    return results

"""Builders for the training tests: fake finished or unfinished runs of a training sweep."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf


def fake_run(run: Path, overrides: list, accuracy=None, per_bin=(1.0, 0.5, 0.75)) -> Path:
    """A run directory of a multirun with ``overrides``; finished (metrics.json) when
    ``accuracy`` is given."""
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), run / ".hydra" / "overrides.yaml")
    if accuracy is not None:
        (run / "metrics.json").write_text(json.dumps({
            "test_accuracy": accuracy, "test_balanced_accuracy": accuracy - 0.01,
            "test_per_bin_accuracy": list(per_bin), "test_n": 12, "best_epoch": 3,
            "epochs_run": 4, "stopped_early": False, "best_monitor_value": 0.7,
            "timings": {"train_seconds": 10.0, "train_volumes_per_s": 50.0, "replicas": 1}}))
    return run


def fake_sweep(sweep: Path) -> Path:
    """Four runs (seeds 1, 2 x two widths; the last unfinished), a non-run folder and
    submitit's folder."""
    accuracies = {(1, "[4,8]"): 0.6, (2, "[4,8]"): 0.7, (1, "[8,16]"): 0.8, (2, "[8,16]"): None}
    for num, ((seed, widths), acc) in enumerate(accuracies.items()):
        fake_run(sweep / str(num), [f"seed={seed}", f"model.widths={widths}"], acc)
    (sweep / "10").mkdir()  # not a run: no .hydra, no metrics.json
    (sweep / ".submitit" / "0" / ".hydra").mkdir(parents=True)
    return sweep

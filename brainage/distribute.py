"""Distribute stage: how fast the input pipeline streams volumes, per number of reader workers.

    python -m brainage.distribute                                   # a 590 MB float16 test cache
    python -m brainage.distribute cache=/path/to/cache/<key>/volumes.npy workers=[1,2,4]

prints volumes/s and MB/s per worker count and the peak memory (see ``configs/distribute.yaml``)
and writes them to ``stream.json`` in the run directory. Multi-device training itself is
``trainer.distribution`` of the training stage (:mod:`brainage.training.distribution`); the
measuring is :mod:`brainage.training.stream_measure`.
"""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from brainage.runs import hydra_entry, run_stage
from brainage.training.legacy_args import hydra_overrides
from brainage.training.stream_measure import StreamSettings, stream_report, write_test_cache

LEGACY_OPTIONS = {"--cache": "cache", "--batch-size": "batch_size", "--workers": "workers"}


def distribute(cfg: DictConfig, run_dir: str | Path | None = None) -> dict:
    """Measure the input pipeline on ``cfg.cache`` (or a test cache); print and return the result.

    Raises
    ------
    DataError
        A missing cache file, or a count that is not positive.
    """
    import tempfile


    settings = StreamSettings.from_cfg(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        cache = settings.cache or write_test_cache(Path(tmp) / "volumes.npy", settings.n_volumes)
        report = stream_report(cache, settings.batch_size, settings.workers,
                               cold=not settings.warm)
    text = json.dumps(report, indent=2)
    print(text)
    if run_dir is not None:
        (Path(run_dir) / "stream.json").write_text(text)
    return report


def _main(cfg: DictConfig, run_dir=None) -> None:
    """Command line: ``python -m brainage.distribute [n_volumes=240] [cache=...] [workers=[1,2,4]]
    [batch_size=8] [warm=true]``; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_stage(distribute, cfg, run_dir=run_dir)


def _legacy_args(args: list) -> list:
    """The earlier ``python -m brainage.distribute [N] [--cache F] [--batch-size B] [--workers 1 2
    4] [--warm]`` rewritten into overrides."""
    return hydra_overrides(args, "n_volumes", LEGACY_OPTIONS, switches={"--warm": "warm"},
                           lists=("workers",))


main = hydra_entry(_main, "distribute", legacy_args=_legacy_args)


if __name__ == "__main__":
    main()

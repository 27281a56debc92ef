"""Explain shards: a deterministic part of the subjects, written so that a merge can combine them.

A shard is an explain run with ``shard=i/n``: it explains every n-th batch of the selected
subjects starting at batch i (batches of ``batch_size`` in selection order, so each subject sits
in the same batch as in a single job) and writes, besides its ``maps/``::

    shard/subjects.csv  shard/conservation.csv  shard/regions.csv   rows with their batch index
    shard/group_sums.npz    float64 sums of the normalised maps per (method, bin)
    shard/traces.json       conservation traces (report)
    shard/config.yaml       the explain config it ran with (train_dir resolved)
    shard.json              written last: shard i/n, batches, subject ids, training run, model
                            hash, methods, targets, atlas, config hash

:mod:`brainage.explaining.merge` finds, checks and combines them.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.errors import ExplainError
from brainage.explaining.batches import batch_rows, explain_batches
from brainage.explaining.parts import Part
from brainage.explaining.settings import ExplainSettings
from brainage.trained import OpenedRun, open_train_run

log = logging.getLogger(__name__)

SHARD_FILE = "shard.json"
SHARD_DIR = "shard"
# Keys that do not change what a shard computes: left out of the configuration hash (the
# training run and model are compared by their resolved path and content instead).
UNHASHED = ("shard", "merge", "progress", "figures", "train_dir", "model_path", "outputs_dir",
            "hydra")


def shard_batches(n_batches: int, shard: tuple[int, int]) -> list:
    """Global indices of the batches of shard ``(i, n)``: every n-th batch from the i-th.

    Whole batches keep every subject in the same batch as in a single job (identical maps);
    taking every n-th balances the shards within one batch.
    """
    i, n = shard
    return list(range(i, n_batches, n))


def config_hash(config: dict) -> str:
    """Hash of the explain settings that decide a shard's results (a resolved config)."""
    plain = copy.deepcopy(config)
    for key in UNHASHED:
        plain.pop(key, None)
    if isinstance(plain.get("regions"), dict):
        plain["regions"] = {k: v for k, v in plain["regions"].items() if k != "top_k"}
    return sha256(json.dumps(plain, sort_keys=True, default=str).encode())[:16]


def explain_shard(settings: ExplainSettings, work: Path) -> dict:
    """Explain shard ``settings.shard`` into ``work``; returns the contents of ``shard.json``."""
    t0 = time.perf_counter()
    opened = open_train_run(settings.run, settings.progress)
    batches = batch_rows(opened.rows, settings.batch_size)
    mine = shard_batches(len(batches), settings.shard)
    i, n = settings.shard
    if not mine:
        raise ExplainError(f"shard={i}/{n} has no subjects: the {len(opened.rows)} selected "
                           f"subjects make {len(batches)} batches of batch_size="
                           f"{settings.batch_size}; use at most {len(batches)} shards or a "
                           "smaller batch_size")
    log.info("shard %d/%d: batches %s of %d", i, n, mine, len(batches))
    part = explain_batches(settings, opened, batches, mine, work)
    part.seconds = round(time.perf_counter() - t0, 1)
    write_part(settings, opened, part, work / SHARD_DIR)
    return shard_record(settings, opened, part)


def write_part(settings: ExplainSettings, opened: OpenedRun, part: Part, out: Path) -> None:
    """A shard's tables, group sums, traces and config, in ``out``."""
    from omegaconf import OmegaConf

    out.mkdir(parents=True, exist_ok=True)
    part.subjects.to_csv(out / "subjects.csv", index=False)
    part.conservation.to_csv(out / "conservation.csv", index=False)
    part.regions.to_csv(out / "regions.csv", index=False)
    groups = sorted(part.group_sum)
    np.savez(out / "group_sums.npz", **{f"g{g}": part.group_sum[key] for g, key in enumerate(groups)})
    (out / "traces.json").write_text(json.dumps(part.traces))
    saved = OmegaConf.create(settings.config)
    saved.train_dir = str(opened.train.dir)
    saved.model_path = str(opened.train.model_path)
    OmegaConf.save(saved, out / "config.yaml")


def shard_record(settings: ExplainSettings, opened: OpenedRun, part: Part) -> dict:
    """What ``shard.json`` holds: which part this is and what a merge must check it against."""
    i, n = settings.shard
    groups = sorted(part.group_sum)
    selected = opened.subject_ids()
    return {
        "shard": f"{i}/{n}", "index": i, "count": n,
        "batches": sorted({int(b) for b in part.subjects["batch"]}),
        "n_batches": -(-len(opened.rows) // settings.batch_size),
        "batch_size": settings.batch_size,
        "subject_ids": [str(s) for s in part.subjects["subject_id"]],
        "n_selected": len(selected),
        "selection_sha256": selection_sha256(selected),
        "train_dir": str(opened.train.dir), "model_path": str(opened.train.model_path),
        "model_sha256": file_sha256(opened.train.model_path),
        "methods": settings.methods, "targets": list(settings.targets),
        "atlas": settings.atlas.name, "config_hash": config_hash(settings.config),
        "groups": [{"key": f"g{g}", "method": m, "bin": int(k), "n": int(part.group_n[(m, k)])}
                   for g, (m, k) in enumerate(groups)],
        "n_maps": int(len(part.conservation)),
        "seconds": part.seconds,
    }


def read_part(path: Path, info: dict) -> Part:
    """A shard's results as written by :func:`write_part` (values round-trip exactly)."""
    out = Path(path) / SHARD_DIR
    with np.load(out / "group_sums.npz") as arrays:
        group_sum = {(g["method"], g["bin"]): arrays[g["key"]] for g in info["groups"]}
    return Part(
        subjects=_read_csv(out / "subjects.csv"),
        conservation=_read_csv(out / "conservation.csv"),
        regions=_read_csv(out / "regions.csv"),
        group_sum=group_sum,
        group_n={(g["method"], g["bin"]): g["n"] for g in info["groups"]},
        traces=json.loads((out / "traces.json").read_text()),
        seconds=float(info.get("seconds") or 0.0),
    )


def _read_csv(path: Path) -> pd.DataFrame:
    # Exact float round trip (pandas ≥ 3 parses floats exactly by default and deprecates the
    # option); only empty fields are missing (a region may be called "NA").
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    return pd.read_csv(path, dtype={"subject_id": str, "split": str, "method": str,
                                    "target": str, "region": str},
                       keep_default_na=False, na_values=[""], **exact)


def selection_sha256(subject_ids: list) -> str:
    """Hash of the selected subjects, in order: shards and their merge must agree on it."""
    return sha256("\n".join(subject_ids).encode())


def sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

"""Explain at scale: shards of the explain stage, and their merge into one explain run.

A shard is an explain run with ``shard=i/n``: it explains every n-th batch of the selected
subjects starting at batch i (batches of ``batch_size`` in selection order, so each subject sits
in the same batch as in a single job) and writes, besides its ``maps/``::

    shard/subjects.csv  shard/conservation.csv  shard/regions.csv   rows with their batch index
    shard/group_sums.npz    float64 sums of the normalised maps per (method, bin)
    shard/traces.json       conservation traces (report)
    shard/config.yaml       the explain config it ran with (train_dir resolved)
    shard.json              written last: shard i/n, batches, subject ids, training run, model
                            hash, methods, targets, atlas, config hash

The merge (``python -m brainage.explain merge=<dir>``, where ``<dir>`` is a multirun directory
holding the shards, a shard directory, or a list of either) checks that the shards are complete
and belong together, links their maps into ``maps/`` and writes the group maps, region tables,
figures and report exactly as a single job over all subjects would. Settings come from the
shards; only ``figures.*``, ``regions.top_k`` and ``progress`` are taken from the merge's own
command line.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.explain import (
    SHARD_FILE,
    ExplainError,
    Part,
    combine_parts,
    prepare_setup,
)
from brainage.runs import WORK_DIR

log = logging.getLogger(__name__)

SHARD_DIR = "shard"
# Keys that do not change what a shard computes: left out of the configuration hash (the
# training run and model are compared by their resolved path and content instead).
UNHASHED = ("shard", "merge", "progress", "figures", "train_dir", "model_path", "outputs_dir",
            "hydra")
# What every shard of one merge must share.
SHARED = ("count", "config_hash", "train_dir", "model_sha256", "selection_sha256", "n_batches")


def config_hash(cfg) -> str:
    """Hash of the explain settings that decide a shard's results."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in UNHASHED:
        plain.pop(key, None)
    if isinstance(plain.get("regions"), dict):
        plain["regions"] = {k: v for k, v in plain["regions"].items() if k != "top_k"}
    return _sha256(json.dumps(plain, sort_keys=True, default=str).encode())[:16]


def write_shard(cfg, setup, part: Part, shard: tuple, work: Path) -> dict:
    """Write ``part`` as shard ``(i, n)`` into ``work``; returns the contents of ``shard.json``."""
    from omegaconf import OmegaConf

    i, n = shard
    out = work / SHARD_DIR
    out.mkdir(parents=True, exist_ok=True)
    part.subjects.to_csv(out / "subjects.csv", index=False)
    part.conservation.to_csv(out / "conservation.csv", index=False)
    part.regions.to_csv(out / "regions.csv", index=False)
    groups = sorted(part.group_sum)
    np.savez(out / "group_sums.npz", **{f"g{g}": part.group_sum[key] for g, key in enumerate(groups)})
    (out / "traces.json").write_text(json.dumps(part.traces))
    saved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    saved.train_dir = str(setup.train.dir)
    saved.model_path = str(setup.train.model_path)
    OmegaConf.save(saved, out / "config.yaml")
    batch_size = int(cfg.get("batch_size", 4))
    selected = [str(s) for s in setup.prep.table["subject_id"].to_numpy()[setup.rows]]
    return {
        "shard": f"{i}/{n}", "index": i, "count": n,
        "batches": sorted({int(b) for b in part.subjects["batch"]}),
        "n_batches": -(-len(setup.rows) // batch_size), "batch_size": batch_size,
        "subject_ids": [str(s) for s in part.subjects["subject_id"]],
        "n_selected": len(selected),
        "selection_sha256": _sha256("\n".join(selected).encode()),
        "train_dir": str(setup.train.dir), "model_path": str(setup.train.model_path),
        "model_sha256": _file_sha256(setup.train.model_path),
        "methods": setup.methods, "targets": setup.specs, "atlas": setup.atlas_name,
        "config_hash": config_hash(cfg),
        "groups": [{"key": f"g{g}", "method": m, "bin": int(k), "n": int(part.group_n[(m, k)])}
                   for g, (m, k) in enumerate(groups)],
        "n_maps": int(len(part.conservation)),
        "seconds": part.seconds,
    }


def find_shards(merge, exclude=None) -> tuple[list, list]:
    """Complete and incomplete shard directories named by ``merge`` (dirs or multirun dirs).

    ``exclude``: a directory never taken for a shard (the merge's own run directory).
    """
    paths = [merge] if isinstance(merge, (str, os.PathLike)) else list(merge)
    if not paths:
        raise ExplainError("merge=[]: name the shard directories or their multirun directory")
    found = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise ExplainError(f"merge: {path} is not a directory")
        if _looks_like_shard(path):
            found.append(path)
            continue
        children = sorted((c for c in path.iterdir()
                           if c.is_dir() and c != exclude and _looks_like_shard(c)),
                          key=lambda c: (len(c.name), c.name))
        if not children:
            raise ExplainError(f"merge: {path} holds no explain shard (no {SHARD_FILE} in it or "
                               "in any sub-directory)")
        found += children
    complete = [p for p in found if (p / SHARD_FILE).is_file()]
    return complete, [p for p in found if p not in complete]


def check_shards(complete: list, incomplete: list) -> list:
    """The shards' ``shard.json`` contents in shard order, after checking they form one run.

    Raises
    ------
    ExplainError
        No finished shard; shards of different runs or settings; a shard twice; a shard missing
        or unfinished (with the command that reruns it alone); overlapping subjects.
    """
    if not complete:
        where = ", ".join(str(p) for p in incomplete) or "the given directories"
        raise ExplainError(f"merge: no finished shard ({SHARD_FILE}) in {where}")
    infos = []
    for path in complete:
        info = json.loads((path / SHARD_FILE).read_text())
        info["dir"] = str(path)
        infos.append(info)
    first = infos[0]
    for info in infos[1:]:
        for key in SHARED:
            if info.get(key) != first.get(key):
                raise ExplainError(
                    f"merge: shard {info['dir']} does not belong with {first['dir']}: {key} "
                    f"{info.get(key)!r} vs {first.get(key)!r}; all shards of one merge must come "
                    "from one explain configuration and training run")
    by_index = {}
    for info in infos:
        if info["index"] in by_index:
            raise ExplainError(f"merge: shard {info['shard']} is there twice: "
                               f"{by_index[info['index']]['dir']} and {info['dir']}; pass only one")
        by_index[info["index"]] = info
    count = first["count"]
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        claims = {}
        for path in incomplete:
            claims.setdefault(_claimed_shard(path), []).append(path)
        lines = []
        for i in missing:
            spec = f"{i}/{count}"
            for path in claims.get(spec, []):
                lines.append(f"  shard {spec}: {path} did not finish (no {SHARD_FILE}); rerun it "
                             f"alone:\n    {_rerun_command(path, spec)}")
            if spec not in claims:
                lines.append(f"  shard {spec}: not found; run it with shard={spec} and the same "
                             "settings, then name its directory in merge=[…]")
        raise ExplainError(f"merge: {len(missing)} of {count} shards missing or incomplete:\n"
                           + "\n".join(lines))
    for path in incomplete:
        log.warning("ignoring %s: an unfinished attempt at shard %s, which another directory "
                    "holds complete", path, _claimed_shard(path))
    infos = [by_index[i] for i in range(count)]
    seen = {}
    for info in infos:
        for sid in info["subject_ids"]:
            if sid in seen:
                raise ExplainError(f"merge: subject {sid} is in shard {seen[sid]} and shard "
                                   f"{info['shard']}; the shards overlap")
            seen[sid] = info["shard"]
    if len(seen) != first["n_selected"]:
        raise ExplainError(f"merge: the shards hold {len(seen)} subjects, the selection "
                           f"{first['n_selected']}")
    return infos


def merge_shards(cfg, merge, work: Path) -> dict:
    """Combine the shards named by ``merge`` into the explain run being written in ``work``."""
    from omegaconf import OmegaConf

    t0 = time.perf_counter()
    infos = check_shards(*find_shards(merge, exclude=work.parent))
    shard_cfg = OmegaConf.load(Path(infos[0]["dir"]) / SHARD_DIR / "config.yaml")
    # Report-only settings from the merge's own command line.
    shard_cfg.figures = cfg.get("figures") or shard_cfg.get("figures")
    shard_cfg.regions.top_k = cfg.regions.get("top_k", shard_cfg.regions.get("top_k", 10))
    shard_cfg.progress = cfg.get("progress", False)
    setup = prepare_setup(shard_cfg)
    selected = [str(s) for s in setup.prep.table["subject_id"].to_numpy()[setup.rows]]
    if _sha256("\n".join(selected).encode()) != infos[0]["selection_sha256"]:
        raise ExplainError(f"merge: the data stage now selects other subjects than the shards "
                           f"explained (training run {setup.train.dir}); merge with the data the "
                           "shards used")
    (work / "maps").mkdir(exist_ok=True)
    parts = []
    for info in infos:
        path = Path(info["dir"])
        for src in sorted((path / "maps").iterdir()):
            _link_or_copy(src, work / "maps" / src.name)
        parts.append(read_part(path, info))
    log.info("merging %d shards, %d subjects", len(parts), len(selected))
    return combine_parts(shard_cfg, setup, parts, work, t0,
                         extra={"shards": [info["dir"] for info in infos],
                                "shard_seconds": [info.get("seconds") for info in infos]})


def read_part(path: Path, info: dict) -> Part:
    """A shard's results as written by :func:`write_shard` (values round-trip exactly)."""
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
    # Exact float round trip; only empty fields are missing (a region may be called "NA").
    return pd.read_csv(path, dtype={"subject_id": str, "split": str, "method": str,
                                    "target": str, "region": str},
                       float_precision="round_trip", keep_default_na=False, na_values=[""])


def _looks_like_shard(path: Path) -> bool:
    return (path / SHARD_FILE).is_file() or (path / WORK_DIR).is_dir() or \
        (path / ".hydra" / "config.yaml").is_file()


def _claimed_shard(path: Path) -> str | None:
    """The ``shard=i/n`` an unfinished run directory was started with, if Hydra recorded it."""
    from omegaconf import OmegaConf

    config = path / ".hydra" / "config.yaml"
    if not config.is_file():
        return None
    shard = OmegaConf.load(config).get("shard")
    return None if shard is None else str(shard)


def _rerun_command(path: Path, spec: str) -> str:
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = []
    if overrides_file.is_file():
        from omegaconf import OmegaConf

        overrides = [str(o) for o in OmegaConf.load(overrides_file)
                     if not str(o).startswith(("shard=", "hydra/launcher="))]
    words = ["python", "-m", "brainage.explain", f"shard={spec}", *overrides,
             f"hydra.run.dir={path}"]
    return " ".join(shlex.quote(w) for w in words)


def _link_or_copy(src: Path, dest: Path) -> None:
    """Hard link (no extra disk) where the file system allows, else copy."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

"""Merge explain shards into one explain run, identical to a single job over all subjects.

``python -m brainage.explain merge=<dir>``, where ``<dir>`` is a multirun directory holding the
shards, a shard directory, or a list of either: the shards are checked to be complete and to
belong together, their maps are linked into ``maps/``, and the group maps, region tables, figures
and report are written exactly as a single job writes them. Settings come from the shards; only
``figures.*``, ``regions.top_k`` and ``progress`` are taken from the merge's own command line.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import shutil
import time
from pathlib import Path

from brainage.errors import ExplainError
from brainage.explaining.combine import combine_parts
from brainage.explaining.settings import ExplainSettings
from brainage.explaining.shards import SHARD_DIR, SHARD_FILE, read_part, selection_sha256
from brainage.runs import WORK_DIR
from brainage.trained import open_train_run

log = logging.getLogger(__name__)

# What every shard of one merge must share.
SHARED = ("count", "config_hash", "train_dir", "model_sha256", "selection_sha256", "n_batches")


def merge_shards(settings: ExplainSettings, work: Path) -> dict:
    """Combine the shards named by ``settings.merge`` into the run being written in ``work``."""
    t0 = time.perf_counter()
    infos = check_shards(*find_shards(settings.merge, exclude=work.parent))
    shard_settings = _shard_settings(Path(infos[0]["dir"]), settings)
    opened = open_train_run(shard_settings.run, shard_settings.progress)
    if selection_sha256(opened.subject_ids()) != infos[0]["selection_sha256"]:
        raise ExplainError(f"merge: the data stage now selects other subjects than the shards "
                           f"explained (training run {opened.train.dir}); merge with the data the "
                           "shards used")
    (work / "maps").mkdir(exist_ok=True)
    parts = []
    for info in infos:
        path = Path(info["dir"])
        for src in sorted((path / "maps").iterdir()):
            _link_or_copy(src, work / "maps" / src.name)
        parts.append(read_part(path, info))
    log.info("merging %d shards, %d subjects", len(parts), len(opened.rows))
    return combine_parts(shard_settings, opened, parts, work, t0,
                         extra={"shards": [info["dir"] for info in infos],
                                "shard_seconds": [info.get("seconds") for info in infos]})


def _shard_settings(shard_dir: Path, merge_settings: ExplainSettings) -> ExplainSettings:
    """The settings a shard ran with, with the merge's own report-only settings."""
    from omegaconf import OmegaConf

    shard_settings = ExplainSettings.from_cfg(OmegaConf.load(shard_dir / SHARD_DIR / "config.yaml"))
    return dataclasses.replace(shard_settings, shard=None,
                               figure_subjects=merge_settings.figure_subjects,
                               top_k=merge_settings.top_k, progress=merge_settings.progress)


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
    infos = [{**json.loads((path / SHARD_FILE).read_text()), "dir": str(path)} for path in complete]
    _check_same_run(infos)
    by_index = _by_index(infos)
    count = infos[0]["count"]
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        raise ExplainError(f"merge: {len(missing)} of {count} shards missing or incomplete:\n"
                           + "\n".join(_missing_lines(missing, count, incomplete)))
    for path in incomplete:
        log.warning("ignoring %s: an unfinished attempt at shard %s, which another directory "
                    "holds complete", path, _claimed_shard(path))
    infos = [by_index[i] for i in range(count)]
    _check_subjects(infos)
    return infos


def _check_same_run(infos: list) -> None:
    first = infos[0]
    for info in infos[1:]:
        for key in SHARED:
            if info.get(key) != first.get(key):
                raise ExplainError(
                    f"merge: shard {info['dir']} does not belong with {first['dir']}: {key} "
                    f"{info.get(key)!r} vs {first.get(key)!r}; all shards of one merge must come "
                    "from one explain configuration and training run")


def _by_index(infos: list) -> dict:
    by_index = {}
    for info in infos:
        if info["index"] in by_index:
            raise ExplainError(f"merge: shard {info['shard']} is there twice: "
                               f"{by_index[info['index']]['dir']} and {info['dir']}; pass only one")
        by_index[info["index"]] = info
    return by_index


def _missing_lines(missing: list, count: int, incomplete: list) -> list[str]:
    """Per missing shard: the unfinished attempt and the command that reruns it, or how to run it."""
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
    return lines


def _check_subjects(infos: list) -> None:
    seen = {}
    for info in infos:
        for sid in info["subject_ids"]:
            if sid in seen:
                raise ExplainError(f"merge: subject {sid} is in shard {seen[sid]} and shard "
                                   f"{info['shard']}; the shards overlap")
            seen[sid] = info["shard"]
    if len(seen) != infos[0]["n_selected"]:
        raise ExplainError(f"merge: the shards hold {len(seen)} subjects, the selection "
                           f"{infos[0]['n_selected']}")


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
    from omegaconf import OmegaConf

    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = []
    if overrides_file.is_file():
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

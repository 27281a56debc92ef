"""The preprocess config (``configs/preprocess.yaml``) read once into typed, validated settings.

The ``steps`` block becomes the steps' own :class:`~brainage.preprocessing.steps.StepSettings`,
read field by field from the dataclass, so a new step setting needs no edit here: each value is
checked against the kind of its field's default (an int, a number, a list, text, a flag).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from brainage.config_values import ConfigReader, as_is, flag, integer, number, one_of, positive, text
from brainage.data.workers import WORKERS_EXPECTED, worker_count
from brainage.errors import DataError
from brainage.preprocessing.steps import StepSettings

ROOT_EXPECTED = ("the raw T1 folder (BIDS raw: sub-*/anat/*_T1w.nii.gz and participants.tsv), e.g. "
                 "make preprocess data.root=../shared/data/ixi")


@dataclass(frozen=True)
class QcSettings:
    """``qc``: when a subject is flagged, and how large its picture is."""

    z_threshold: float
    picture_dpi: int

    @classmethod
    def from_reader(cls, qc: ConfigReader) -> "QcSettings":
        return cls(z_threshold=qc.value("z_threshold", positive, "a robust z-score above 0"),
                   picture_dpi=qc.value("picture_dpi", integer, "dots per inch of qc/<subject>.png"))


@dataclass(frozen=True)
class PreprocessSettings:
    """Everything the preprocess stage reads from its config; each key is documented in the YAML.

    ``shard`` is ``(i, n)``: this run preprocesses every n-th subject from the i-th (a multirun
    job) and writes no tables; None: every subject, then the tables, QC and report.
    """

    root: Path
    participants: Path
    t1_glob: str
    derivatives_dir: Path
    workers: int | None
    on_bad_subject: str
    shard: tuple | None
    progress: bool
    qc: QcSettings
    steps: StepSettings

    @classmethod
    def from_cfg(cls, cfg) -> "PreprocessSettings":
        """Read and validate; a :class:`DataError` names the key and what was expected."""
        top = ConfigReader(cfg, "")
        data = top.block("data", "a data block with root, participants and t1_glob")
        return cls(
            root=Path(_root(data)),
            participants=Path(data.value("participants", text, "the participants table (TSV or CSV)")),
            t1_glob=data.value("t1_glob", text, "a path pattern with {root} and {subject_id}"),
            derivatives_dir=Path(top.value("derivatives_dir", text, "a folder")),
            workers=top.value("workers", worker_count, WORKERS_EXPECTED, optional=True),
            on_bad_subject=top.value("on_bad_subject", one_of("fail", "exclude"), "'fail' or 'exclude'"),
            shard=top.value("shard", parse_shard, "i/n with 0 <= i < n, e.g. 0/4, or null", optional=True),
            progress=top.value("progress", flag, "true or false"),
            qc=QcSettings.from_reader(top.block("qc", "a qc block")),
            steps=read_steps(top.block("steps", "a steps block")),
        )


def _root(data: ConfigReader) -> str:
    """``data.root``, which has no default: its absence is said in words, with an example."""
    if OmegaConf.is_config(data.cfg) and OmegaConf.is_missing(data.cfg, "root"):
        raise DataError(f"data.root is required: {ROOT_EXPECTED}")
    root = data.value("root", text, ROOT_EXPECTED)
    if not Path(root).is_dir():
        raise DataError(f"data.root={root}: no such folder; expected {ROOT_EXPECTED}")
    return root


def parse_shard(value) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``."""
    i, n = (int(part) for part in str(value).split("/"))
    if not 0 <= i < n:
        raise ValueError(value)
    return i, n


def _converter(default):
    """How a step setting is checked: by the kind of its default value."""
    if isinstance(default, bool):
        return flag
    if isinstance(default, int):
        return integer
    if isinstance(default, float):
        return number
    if isinstance(default, str):
        return text
    if isinstance(default, (tuple, list)):
        kind = _converter(default[0]) if default else as_is
        return lambda value: tuple(kind(v) for v in as_is(value))
    return as_is


def read_steps(steps: ConfigReader) -> StepSettings:
    """``StepSettings`` from the ``steps`` block; a key the dataclass lacks is an error, and a
    field the block leaves out keeps the dataclass's default."""
    fields = {f.name: f for f in dataclasses.fields(StepSettings)}
    given = list(steps.cfg) if steps.cfg is not None else []
    unknown = [key for key in given if key not in fields]
    if unknown:
        raise DataError(f"steps.{unknown[0]} is not a step setting; expected one of "
                        f"{', '.join(fields)}")
    values = {}
    for name in given:
        default = fields[name].default
        kind = type(default).__name__ if default is not dataclasses.MISSING else "a value"
        values[name] = steps.value(name, _converter(default), f"{kind} like {default!r}",
                                   optional=default is None)
    return StepSettings(**values)

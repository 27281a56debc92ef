"""The data config (``configs/data/*.yaml``) read once into typed, validated settings."""
from __future__ import annotations

from dataclasses import dataclass

from brainage.config_values import ConfigReader, flag, integer, number, one_of, sequence, text
from brainage.data.bins import BALANCE_METHODS, check_bin_edges, check_split_fractions
from brainage.data.cache import DTYPES
from brainage.data.formats import DataFormat, format_class
from brainage.data.real_plant import RealPlantSettings
from brainage.data.synthetic.settings import SyntheticCohortSettings
from brainage.data.workers import WORKERS_EXPECTED, worker_count

SHAPE_EXPECTED = "three voxel counts, e.g. [100, 124, 104], or null"


def numeric(value):
    """A number kept as written (an int stays an int, so bin edges print as they were given)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    return value


@dataclass(frozen=True)
class CacheSettings:
    """``data.cache``: where decoded volumes are kept, in which precision, built by how many threads.

    Attributes
    ----------
    dir : str
        Folder of the cache entries (``data/cache``).
    dtype : {"float16", "float32"}
    workers : int or None
        Threads decoding and validating images; None = every available core.
    """

    dir: str
    dtype: str
    workers: int | None

    @classmethod
    def from_reader(cls, cache: ConfigReader) -> "CacheSettings":
        return cls(
            dir=cache.value("dir", text, "a folder"),
            dtype=cache.value("dtype", one_of(*DTYPES), f"one of {sorted(DTYPES)}"),
            # Configs saved by runs from before the setting existed lack it: every core, as its
            # YAML default (the cache is the same whatever the count).
            workers=(cache.value("workers", worker_count, WORKERS_EXPECTED, optional=True)
                     if cache.has("workers") else None),
        )


@dataclass(frozen=True)
class StreamSettings:
    """``data.stream``: reader threads and batches prefetched while training."""

    workers: int
    prefetch: int

    @classmethod
    def from_reader(cls, stream: ConfigReader) -> "StreamSettings":
        return cls(workers=stream.value("workers", integer, "a number of reader threads"),
                   prefetch=stream.value("prefetch", integer, "a number of batches"))


@dataclass(frozen=True)
class DataSettings:
    """Everything the data stage reads from a data config, typed and validated.

    Built by :meth:`from_cfg`; the fields mirror ``configs/data/synthetic.yaml``, where each is
    documented. Shapes and offsets are tuples of ints, bin edges and fractions tuples of numbers,
    the affine a 4 x 4 tuple of numbers as written (None = the 1.5 mm MNI grid). ``source`` is
    the data format (``data.format``) with its own keys (``image_template``, ``npy_path``…;
    :mod:`brainage.data.formats`). ``synthetic`` is the cohort to generate when ``generate`` is
    true and the format is one the generator writes, else None.
    """

    format: str
    source: DataFormat
    root: str | None
    participants: str
    n_subjects: int | None
    generate: bool
    synthetic: SyntheticCohortSettings | None
    plant_into: RealPlantSettings | None  # a real cohort to plant into, written at root once
    source_shape: tuple | None
    crop_shape: tuple | None
    crop_offset: tuple | None
    affine: tuple | None
    bin_edges: tuple
    balance: str
    split: tuple
    split_seed: int | None
    on_bad_subject: str
    value_range: tuple
    value_tolerance: float
    cache: CacheSettings
    stream: StreamSettings

    @classmethod
    def from_cfg(cls, cfg) -> "DataSettings":
        """Read and validate a data config (a ``DictConfig`` or a mapping with every key).

        Raises
        ------
        DataError
            A key is missing or holds a value of the wrong kind; the message names the key
            (``data.crop_shape``) and what was expected.
        """
        data = ConfigReader(cfg, "data")
        fmt = format_class(data)
        generate = data.value("generate", flag, "true or false")
        root = data.value("root", text, "the cohort folder or null", optional=True)
        participants = data.value("participants", text, "a CSV or TSV file")
        source = fmt.from_config(data)  # the format's own keys: image_template, npy_path…
        return cls(
            format=fmt.name,
            source=source,
            root=root,
            participants=participants,
            n_subjects=data.value("n_subjects", integer, "a number of subjects or null",
                                  optional=True),
            generate=generate,
            synthetic=SyntheticCohortSettings.from_cfg(cfg) if generate and source.generates else None,
            plant_into=RealPlantSettings.from_reader(data),
            **_grid_fields(data),
            **_bin_fields(data),
            on_bad_subject=data.value("on_bad_subject", one_of("fail", "exclude"),
                                      "'fail' or 'exclude'"),
            value_range=data.value("value_range", sequence(number, 2), "[low, high]"),
            value_tolerance=data.value("value_tolerance", number, "a number"),
            cache=CacheSettings.from_reader(data.block("cache", "a cache block")),
            stream=StreamSettings.from_reader(data.block("stream", "a stream block")),
        )


def _grid_fields(data: ConfigReader) -> dict:
    """``source_shape``, ``crop_shape``, ``crop_offset`` and ``affine``."""
    shape = sequence(integer, 3)
    return {
        "source_shape": data.value("source_shape", shape, SHAPE_EXPECTED, optional=True),
        "crop_shape": data.value("crop_shape", shape, SHAPE_EXPECTED, optional=True),
        "crop_offset": data.value("crop_offset", shape, "three voxel offsets or null (centred)",
                                  optional=True),
        "affine": data.value("affine", sequence(sequence(numeric, 4), 4),
                             "a 4 x 4 voxel-to-world matrix or null", optional=True),
    }


def _bin_fields(data: ConfigReader) -> dict:
    """``bin_edges``, ``balance``, ``split`` and ``split_seed``, checked as the stage will use them."""
    edges = data.value("bin_edges", sequence(numeric), "at least 3 increasing ages")
    check_bin_edges(edges)
    split = data.value("split", sequence(numeric), "three fractions (train, val, test)")
    check_split_fractions(split)
    return {
        "bin_edges": edges,
        "balance": data.value("balance", one_of(*BALANCE_METHODS), f"one of {BALANCE_METHODS}"),
        "split": split,
        "split_seed": data.value("split_seed", integer, "a seed or null (the run's seed)",
                                 optional=True),
    }


"""The benchmark's settings, read once from the ``bench`` config and checked.

Light on purpose: nothing here imports Keras, TensorFlow or JAX, because the backend and the
visible devices must be chosen (:mod:`brainage.benchmark.environment`) before they are imported.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from brainage.config_values import ConfigReader, MustBe, at_least, flag, one_of, positive
from brainage.errors import BrainageError

DEVICES = ("cpu", "gpu", "auto")
BACKENDS = ("tensorflow", "jax")
PEERS = ("zennit",)


def _integers(values) -> list:
    if isinstance(values, (str, int)):
        raise TypeError(values)
    return [int(v) for v in values]


def _all_positive(values: list) -> list:
    if not values or min(values) < 1:
        raise ValueError(values)
    return values


def _positive_ints(bench: ConfigReader, key: str) -> tuple[int, ...]:
    values = bench.value(key, _integers, "a list of positive integers")
    return tuple(bench.check(key, values, _all_positive, "a non-empty list of positive integers"))


def _choice(bench: ConfigReader, key: str, allowed, optional: bool = False) -> str | None:
    value = bench.value(key, one_of(*allowed), f"one of {list(allowed)}", optional)
    return None if value is None else str(value)


def _flag(bench: ConfigReader, key: str) -> bool:
    return bench.value(key, flag, "true or false")


def _at_least(bench: ConfigReader, key: str, low: int, optional: bool = False) -> int | None:
    return bench.value(key, at_least(low), f"an integer >= {low}", optional)


def _threads(bench: ConfigReader) -> int:
    """The configured thread count, or (null) every CPU this process may run on."""
    threads = _at_least(bench, "threads", 1, optional=True)
    if threads is None:
        import os

        return len(os.sched_getaffinity(0))
    return threads


def _peer(bench: ConfigReader, device: str) -> str | None:
    peer = _choice(bench, "peer", PEERS, optional=True)
    if peer is None:
        return None
    if device != "cpu":
        raise BrainageError(f"bench: peer={peer} compares both libraries on the CPU; set device=cpu")
    return peer


def _model_path(value) -> Path | None:
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise BrainageError(f"bench: model_path must name a saved .keras model, got {str(value)!r} "
                            "(no such file)")
    return path


@dataclass(frozen=True)
class BenchSettings:
    """What to time, where, and how often (``configs/bench.yaml`` documents each key).

    Attributes
    ----------
    batch_sizes : tuple of int
        One result row per batch size.
    repeats : int
        Timed runs after one warm-up.
    device : {"cpu", "gpu", "auto"}
        ``cpu`` hides accelerators from TensorFlow and JAX.
    backend : {"tensorflow", "jax"} or None
        Keras backend; None keeps ``KERAS_BACKEND`` (TensorFlow when unset).
    jit_compile : bool
        TensorFlow's XLA for the compiled forward pass and analyzers.
    methods : tuple of str or None
        Explainers to time; None means every registered one. ``dtd`` and ``gradient`` are
        always timed (their ratio is the headline).
    ig_steps : int
        Integrated gradients' steps.
    shape : tuple of int
        Input volume ``(X, Y, Z)``.
    seed : int
        Seeds the weights and the random input.
    train : bool
        Also time one optimisation step.
    mixed_precision : bool
        Also time the training step in ``mixed_float16``.
    model : mapping
        The ``model`` config group (widths, kernel size, ...), as plain Python values.
    model_path : Path or None
        A trained ``.keras`` model to time instead of the ``model`` group's network with random
        weights (its input shape then replaces ``shape``).
    threads : int
        CPU threads of every library (TensorFlow intra-op, PyTorch); null in the config means
        every CPU the process may use.
    peer : {"zennit"} or None
        Also time this library on the same network and weights and compare its maps to ours.
    peer_tolerance : float
        Largest relative L1 distance between the peer's maps and ours that counts as agreement.
    """

    batch_sizes: tuple[int, ...]
    repeats: int
    device: str
    backend: str | None
    jit_compile: bool
    methods: tuple[str, ...] | None
    ig_steps: int
    shape: tuple[int, int, int]
    seed: int
    train: bool
    mixed_precision: bool
    model: Mapping
    model_path: Path | None
    threads: int
    peer: str | None
    peer_tolerance: float

    def __post_init__(self):
        if self.model_path is not None and self.mixed_precision:
            raise BrainageError("bench: mixed_precision builds the model group's network in "
                                "mixed_float16, which a model_path cannot be; drop one of them")

    @classmethod
    def from_cfg(cls, cfg) -> BenchSettings:
        """Read and check the composed ``bench`` config; a bad value raises a one-line
        :class:`~brainage.errors.BrainageError` naming the key and what it accepts."""
        from omegaconf import OmegaConf

        bench = ConfigReader(cfg, "", BrainageError, MustBe("bench"))
        shape = _positive_ints(bench, "shape")
        if len(shape) != 3:
            raise BrainageError(f"bench: shape must be three sizes [X,Y,Z], got {list(shape)}")
        methods = cfg.methods
        if methods is not None:
            if isinstance(methods, str) or not all(isinstance(m, str) for m in methods) or not methods:
                raise BrainageError(f"bench: methods must be a list of explainer names or null, got {methods!r}")
            methods = tuple(methods)
        device = _choice(bench, "device", DEVICES)
        return cls(
            batch_sizes=_positive_ints(bench, "batch_sizes"),
            repeats=_at_least(bench, "repeats", 1),
            device=device,
            backend=_choice(bench, "backend", BACKENDS, optional=True),
            jit_compile=_flag(bench, "jit_compile"),
            methods=methods,
            ig_steps=_at_least(bench, "ig_steps", 1),
            shape=shape,
            seed=_at_least(bench, "seed", 0),
            train=_flag(bench, "train"),
            mixed_precision=_flag(bench, "mixed_precision"),
            model=OmegaConf.to_container(cfg.model, resolve=True),
            model_path=_model_path(cfg.model_path),
            threads=_threads(bench),
            peer=_peer(bench, device),
            peer_tolerance=bench.value("peer_tolerance", positive, "a positive number"),
        )

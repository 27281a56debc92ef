"""Typed reading of one config block: each key converted, a missing or bad value one error.

Settings objects read their block through a :class:`ConfigReader`, so that every message names
the key (``data.cache.dtype``) and what was expected, and no key is read twice. The reader raises
its package's error type, worded as that package's messages have always been (:class:`Wording`,
:class:`MustBe`).
"""
from __future__ import annotations

from typing import Callable

from omegaconf import Container, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from brainage.errors import DataError


class Wording:
    """How a reader words what is wrong: ``data.cache.dtype='x'; expected one of …``.

    ``null_is_bad``: a null value is worded as any bad one (``x=None; expected …``).
    """

    def __init__(self, null_is_bad: bool = False):
        self.null_is_bad = null_is_bad

    def missing(self, name: str, expected: str) -> str:
        return f"{name} is missing; expected {expected}"

    def unreadable(self, name: str, exc: Exception, expected: str) -> str:
        return f"{name} cannot be read ({exc}); expected {expected}"

    def null(self, name: str, expected: str) -> str:
        if self.null_is_bad:
            return self.bad(name, None, expected)
        return f"{name} is null; expected {expected}"

    def bad(self, name: str, value, expected: str) -> str:
        return f"{name}={value!r}; expected {expected}"


KEY_VALUE = Wording()


class MustBe(Wording):
    """The experiments' wording: ``digits: seed must be an integer >= 0, got -1``."""

    def __init__(self, stage: str):
        super().__init__(null_is_bad=True)
        self.stage = stage

    def bad(self, name: str, value, expected: str) -> str:
        return f"{self.stage}: {name} must be {expected}, got {value!r}"


class ConfigReader:
    """Reads the keys of one config block (a mapping or an OmegaConf ``DictConfig``).

    Parameters
    ----------
    cfg : mapping or DictConfig
    prefix : str
        How messages name the block, e.g. ``data`` or ``data.cache``; empty for a stage's
        top-level keys.
    error : type
        The exception raised, a :class:`~brainage.errors.BrainageError`.
    wording : Wording
        How messages are worded.
    """

    def __init__(self, cfg, prefix: str, error: type = DataError, wording: Wording = KEY_VALUE):
        self.cfg = cfg
        self.prefix = prefix
        self.error = error
        self.wording = wording

    def name(self, key: str) -> str:
        """The key as messages spell it, e.g. ``data.cache.dtype``."""
        return f"{self.prefix}.{key}" if self.prefix else key

    def has(self, key: str) -> bool:
        """Whether the block holds ``key`` (for keys that old run directories may lack)."""
        return key in self.cfg

    def raw(self, key: str, expected: str):
        """The value of ``key`` as stored (interpolations resolved), unconverted."""
        try:
            return self.cfg[key]
        except self.error:
            raise
        except KeyError as exc:
            raise self.error(self.wording.missing(self.name(key), expected)) from exc
        except OmegaConfBaseException as exc:  # an unresolvable interpolation, a ??? value
            raise self.error(self.wording.unreadable(self.name(key), exc, expected)) from exc

    def value(self, key: str, convert: Callable, expected: str, optional: bool = False):
        """``convert(value of key)``; None stays None when ``optional``.

        Raises
        ------
        error
            The key is missing, cannot be resolved, is None while required, or ``convert`` rejects
            it (``TypeError``/``ValueError``); the message names the key and ``expected``.
        """
        raw = self.raw(key, expected)
        if raw is None:
            if optional:
                return None
            raise self.error(self.wording.null(self.name(key), expected))
        return self.check(key, raw, convert, expected)

    def check(self, key: str, value, convert: Callable, expected: str):
        """``convert(value)``, a value read from ``key`` (an item of its list, say)."""
        try:
            return convert(value)
        except self.error:
            raise
        except (TypeError, ValueError) as exc:
            raise self.error(self.wording.bad(self.name(key), _plain(value), expected)) from exc

    def block(self, key: str, expected: str) -> "ConfigReader":
        """A reader of the sub-block ``key``."""
        return ConfigReader(self.raw(key, expected), self.name(key), self.error, self.wording)


def _plain(value):
    """OmegaConf containers as plain lists/dicts, for messages."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, Container) else value


# --------------------------------------------------------------------------------------------------
# Converters: each takes the stored value and returns the typed one, or raises TypeError/ValueError.


def integer(value) -> int:
    """An int (a bool or a non-integral number is rejected)."""
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(value)
    return int(value)


def number(value) -> float:
    """A float (a bool is rejected)."""
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


def flag(value) -> bool:
    """A YAML boolean."""
    if not isinstance(value, bool):
        raise ValueError(value)
    return value


def text(value) -> str:
    """A string."""
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def at_least(low: int) -> Callable:
    """A converter that accepts an int of at least ``low`` only (no bool, float or text)."""
    def convert(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(value)
        return value
    return convert


def whole_at_least(low: int) -> Callable:
    """A converter that accepts a whole number (as :func:`integer` reads one) of at least ``low``."""
    def convert(value):
        count = integer(value)
        if count < low:
            raise ValueError(value)
        return count
    return convert


def real(value) -> float:
    """A float from an int or float only (no bool or text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    return float(value)


def positive(value) -> float:
    """A :func:`real` above 0."""
    if not real(value) > 0:
        raise ValueError(value)
    return float(value)


def non_empty(length: int | None = None) -> Callable:
    """A converter of a non-empty list (of ``length`` items if given) into a list."""
    def convert(values):
        if isinstance(values, (str, int, float)) or not len(values) \
                or (length is not None and len(values) != length):
            raise ValueError(values)
        return list(values)
    return convert


def one_of(*options) -> Callable:
    """A converter that accepts one of ``options`` only."""
    def convert(value):
        if value not in options:
            raise ValueError(value)
        return value
    return convert


def sequence(convert: Callable, length: int | None = None) -> Callable:
    """A converter of a list into a tuple of ``convert``-ed items (of ``length`` items if given)."""
    def convert_all(value):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError(value)
        items = tuple(convert(v) for v in value)
        if length is not None and len(items) != length:
            raise ValueError(value)
        return items
    return convert_all


def as_is(value):
    """The value unconverted (OmegaConf containers as plain lists/dicts)."""
    return _plain(value)


def given_overrides(node) -> dict:
    """The overrides actually given in an overrides block (``configs/data_overrides``): every key
    whose value is not null, as plain nested dicts (an empty dict when none)."""
    plain = _plain(node) if node is not None else {}
    if not isinstance(plain, dict):
        return {}
    given = {}
    for key, value in plain.items():
        if isinstance(value, dict):
            value = given_overrides(value)
            if value:
                given[key] = value
        elif value is not None:
            given[key] = value
    return given

"""Typed reading of one config block: each key converted, a missing or bad value a DataError.

The settings objects of the data package (:class:`~brainage.data.settings.DataSettings`,
:class:`~brainage.data.synthetic.settings.SyntheticCohortSettings`) read their block through a
:class:`ConfigReader`, so that every message names the key (``data.cache.dtype``) and what was
expected, and no key is read twice.
"""
from __future__ import annotations

from typing import Callable

from omegaconf import Container, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from brainage.errors import DataError


class ConfigReader:
    """Reads the keys of one config block (a mapping or an OmegaConf ``DictConfig``).

    Parameters
    ----------
    cfg : mapping or DictConfig
    prefix : str
        How messages name the block, e.g. ``data`` or ``data.cache``.
    """

    def __init__(self, cfg, prefix: str = "data"):
        self.cfg = cfg
        self.prefix = prefix

    def name(self, key: str) -> str:
        """The key as messages spell it, e.g. ``data.cache.dtype``."""
        return f"{self.prefix}.{key}"

    def has(self, key: str) -> bool:
        """Whether the block holds ``key`` (for keys that old run directories may lack)."""
        return key in self.cfg

    def raw(self, key: str, expected: str):
        """The value of ``key`` as stored (interpolations resolved), unconverted."""
        try:
            return self.cfg[key]
        except DataError:
            raise
        except KeyError as exc:
            raise DataError(f"{self.name(key)} is missing; expected {expected}") from exc
        except OmegaConfBaseException as exc:  # an unresolvable interpolation, a ??? value
            raise DataError(f"{self.name(key)} cannot be read ({exc}); expected {expected}") from exc

    def value(self, key: str, convert: Callable, expected: str, optional: bool = False):
        """``convert(value of key)``; None stays None when ``optional``.

        Raises
        ------
        DataError
            The key is missing, cannot be resolved, is None while required, or ``convert`` rejects
            it (``TypeError``/``ValueError``); the message names the key and ``expected``.
        """
        raw = self.raw(key, expected)
        if raw is None:
            if optional:
                return None
            raise DataError(f"{self.name(key)} is null; expected {expected}")
        try:
            return convert(raw)
        except DataError:
            raise
        except (TypeError, ValueError) as exc:
            raise DataError(f"{self.name(key)}={_plain(raw)!r}; expected {expected}") from exc

    def block(self, key: str, expected: str) -> "ConfigReader":
        """A reader of the sub-block ``key``."""
        return ConfigReader(self.raw(key, expected), self.name(key))


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

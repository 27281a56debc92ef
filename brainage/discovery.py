"""Plug-in discovery: a package imports its public modules so that they register themselves."""
from __future__ import annotations

import importlib
import pkgutil


def import_public_modules(path, prefix: str) -> list[str]:
    """Import every module and subpackage found on ``path`` whose name does not start with ``_``
    (``prefix`` + name; ``_private`` helpers are left to the modules that use them), in name
    order; returns their full names.

    A module that registers something when imported (a relevance method, a data format) is known
    to its registry once its package has called this on its own ``__path__``, so adding one never
    edits a central list.
    """
    names = []
    for module in pkgutil.iter_modules(path, prefix):
        if not module.name.rpartition(".")[2].startswith("_"):
            importlib.import_module(module.name)
            names.append(module.name)
    return names

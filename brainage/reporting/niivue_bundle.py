"""NiiVue's browser bundle, taken from the ``ipyniivue`` wheel, as a script a report can load offline.

``ipyniivue`` (BSD-2-Clause, like NiiVue itself) ships NiiVue with everything it needs in one
JavaScript file, ``ipyniivue/static/widget.js``: an ES module for Jupyter's anywidget that makes
no network request of its own (colormaps, fonts, shaders and WebAssembly decoders are inline).
Browsers refuse ES modules from ``file://`` pages, so the module is rewritten into a classic
script — the same code wrapped in a function, in strict mode as a module is — that hands the
``Niivue`` class to the page as ``window.BrainageNiivue.Niivue``. The class is found by the one
place the bundle constructs it; a bundle that does not match is refused, never guessed at.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from functools import lru_cache
from pathlib import Path

PACKAGE = "ipyniivue"
SCRIPT_NAME = "niivue.js"
LICENSE_NAME = "LICENSE-niivue.txt"
# ``initialize`` of the anywidget module builds the viewer: ``vA=new t2(C)`` in ipyniivue 2.4.4.
_CONSTRUCTION = re.compile(r'console\.log\("Creating new Niivue instance"\);'
                           r'let \w+=\w+\.get\("opts"\)\?\?\{\},\w+=\w+\(\w+\);\w+=new (\w+)\(')
_MODULE_EXPORT = re.compile(r"export\{\w+ as default\};?\s*$")


class ViewerUnavailable(RuntimeError):
    """The NiiVue bundle cannot be found or is not the shape this module knows."""


def bundle_path() -> Path:
    """``ipyniivue/static/widget.js`` of the installed wheel (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.origin:
        raise ViewerUnavailable(f"{PACKAGE} is not installed (pip install {PACKAGE}): it carries "
                                "the NiiVue viewer the report embeds")
    path = Path(spec.origin).parent / "static" / "widget.js"
    if not path.is_file():
        raise ViewerUnavailable(f"{path} is missing from the installed {PACKAGE}")
    return path


def classic_script(module: str) -> str:
    """The anywidget ES module ``module`` as a classic script defining ``BrainageNiivue``."""
    built = _CONSTRUCTION.findall(module)
    export = _MODULE_EXPORT.search(module)
    if len(built) != 1 or export is None:
        raise ViewerUnavailable(f"the {PACKAGE} bundle is not one this report knows how to load "
                                f"(found {len(built)} Niivue constructions); pin {PACKAGE}==2.4.4")
    body = module[:export.start()]
    return ('(function () {\n"use strict";\n' + body +
            f"\nwindow.BrainageNiivue = {{Niivue: {built[0]}}};\n}})();\n")


@lru_cache(maxsize=1)
def _script_and_notice() -> tuple[str, str]:
    path = bundle_path()
    version = importlib.metadata.version(PACKAGE)
    licence = _licence_text()
    header = (f"/* NiiVue as bundled by {PACKAGE} {version} (BSD-2-Clause; see {LICENSE_NAME}),\n"
              f"   rewritten from an ES module into a classic script by brainage. */\n")
    return header + classic_script(path.read_text(encoding="utf-8")), licence


def _licence_text() -> str:
    """The wheel's licence file, whose notice BSD-2 asks redistributions to keep."""
    for file in importlib.metadata.files(PACKAGE) or []:
        if file.name.upper().startswith("LICENSE"):
            return Path(file.locate()).read_text(encoding="utf-8")
    raise ViewerUnavailable(f"the installed {PACKAGE} carries no licence file")


def write_bundle(folder: Path) -> Path:
    """``folder/niivue.js`` and its licence; returns the script's path."""
    script, licence = _script_and_notice()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LICENSE_NAME).write_text(licence, encoding="utf-8")
    out = folder / SCRIPT_NAME
    out.write_text(script, encoding="utf-8")
    return out

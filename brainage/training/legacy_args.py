"""Command lines of the argparse era (``sweep DIR --over seed``) as Hydra overrides.

``python -m brainage.sweep`` and ``python -m brainage.distribute`` are Hydra stages now; their
earlier forms keep working by rewriting the arguments before Hydra reads them.
"""
from __future__ import annotations

import re

# Hydra's own options that take a value: the word after them is not ours to rewrite.
HYDRA_OPTIONS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "-i", "--config-path",
                            "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                            "--experimental-rerun"}
_PLAIN = re.compile(r"[\w./:+@-]+")


def hydra_overrides(argv: list, positional: str, options: dict, switches: dict = (),
                    lists: tuple = ()) -> list:
    """``argv`` with the old forms rewritten as ``key=value`` overrides.

    Parameters
    ----------
    argv : list of str
        The words after the program name.
    positional : str
        The key a bare word (no ``=``, no leading ``-``) sets.
    options : dict
        ``{"--flag": "key"}`` for flags followed by a value (``--flag=value`` works too).
    switches : dict
        ``{"--flag": "key"}`` for flags without a value; they set ``key=true``.
    lists : tuple of str
        Keys of ``options`` whose flag takes one or more values (``--workers 1 2 4``).
    """
    switches = dict(switches)
    out, i = [], 0
    while i < len(argv):
        word = argv[i]
        flag, eq, inline = word.partition("=")
        if word in HYDRA_OPTIONS_WITH_VALUE:
            out += argv[i:i + 2]
            i += 2
            continue
        if word in switches:
            out.append(f"{switches[word]}=true")
        elif flag in options:
            key = options[flag]
            values = [inline] if eq else []
            while i + 1 < len(argv) and not argv[i + 1].startswith("-") and "=" not in argv[i + 1] \
                    and (not values or key in lists):
                i += 1
                values.append(argv[i])
            if not values:  # a flag without its value: Hydra reports it
                out.append(word)
            elif key in lists:
                out.append(f"{key}=[{','.join(map(_quoted, values))}]")
            else:
                out.append(f"{key}={_quoted(values[0])}")
        elif not eq and not word.startswith("-"):
            out.append(f"{positional}={_quoted(word)}")
        else:
            out.append(word)
        i += 1
    return out


def _quoted(value: str) -> str:
    """``value`` as a Hydra override value: as it is when plain, else single-quoted."""
    if _PLAIN.fullmatch(value):
        return value
    return "'" + value.replace("'", "\\'") + "'"

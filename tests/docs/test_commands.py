"""Every command the README and docs/*.md show runs as written: each ``make <target> …`` and
``python -m brainage.<stage> …`` line of a fenced code block is parsed as the shell and Hydra
would parse it, and its overrides are composed against the stage's primary config.

A doc that names a key the config lacks (``make train trainer.nonexistent=1``), a config group
option that does not exist, a make target the Makefile lacks or a stage module that is gone
fails here, with the command as the test's id. Placeholders such as ``<run>`` stand for a value
the user fills in; they are replaced by a word before parsing. Multirun sweeps (``seed=1,2,3``)
are composed with their first value, as the first job of the sweep would be.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# make targets that run a stage, and the stage they run first (demo trains, then explains)
MAKE_STAGE = re.compile(r"^([\w-]+):[^=\n]*\n\t\$\(PY\) -m brainage\.(\w+)", re.M)
MAKE_TARGET = re.compile(r"^([\w-]+):(?!=)", re.M)
# make variables the Makefile keeps for itself (VENV=…); every other key=value is an override
MAKE_VARIABLES = re.compile(r"\$\(filter-out ([^,]*),\$\(MAKEOVERRIDES\)\)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
COMMAND = re.compile(r"^(?:[A-Z_]+=\S*\s+)*(make\s+[\w-]+|python -m brainage\.[\w.]+)(.*)$")


def _block_commands(block: str) -> list:
    """The commands of one fenced block, continuation lines joined, shell variables expanded."""
    text = block.replace("\\\n", " ")
    variables = {}
    commands = []
    for raw in text.splitlines():
        line = raw.strip()
        assignment = re.fullmatch(r"([A-Za-z_]\w*)=\"([^\"]*)\"", line)
        if assignment:
            variables[assignment[1]] = assignment[2]
            continue
        loop = re.match(r"for (\w+) in (\S+)", line)
        if loop:  # a loop over shards: its first pass stands for all of them
            variables[loop[1]] = loop[2]
            line = line.split("do", 1)[1].strip() if "do" in line else ""
        line = re.sub(r"\$\((seq [^)]*)\)", lambda m: subprocess.run(
            m[1], shell=True, capture_output=True, text=True, check=True).stdout.strip(), line)
        for name, value in variables.items():
            line = re.sub(rf"\${name}\b", value, line)
        line = re.sub(r"\s*&\s*$", "", line)
        if COMMAND.match(line):
            commands.append(line)
    return commands


def doc_commands() -> list:
    """``(doc, command)`` for every stage command in a fenced block of README.md and docs/*.md."""
    found = []
    for doc in DOCS:
        for block in FENCE.findall(doc.read_text()):
            found += [(doc.relative_to(REPO).as_posix(), c) for c in _block_commands(block)]
    return found


def _stage_configs() -> dict:
    """Stage module → its primary config's name, read from each stage's Hydra entry."""
    names = {}
    for module in (REPO / "brainage").glob("*.py"):
        text = module.read_text()
        match = re.search(r'hydra_entry\(\w+, "(\w+)"[,)]', text)
        if match:
            names[module.stem] = match[1]
    return names


def _makefile() -> tuple[set, dict, set]:
    """The Makefile's targets, the stage each stage target runs, and its own variables."""
    text = (REPO / "Makefile").read_text()
    own = {word.removesuffix("=%") for word in MAKE_VARIABLES.search(text)[1].split()}
    return set(MAKE_TARGET.findall(text)), dict(MAKE_STAGE.findall(text)), own


COMMANDS = doc_commands()


def test_the_docs_show_commands_to_check():
    shown = {re.match(COMMAND, c)[1] for _, c in COMMANDS}
    assert len(COMMANDS) >= 30 and {"make train", "make explain", "make evaluate"} <= shown


@pytest.mark.parametrize("doc, command", COMMANDS, ids=[c for _, c in COMMANDS])
def test_command_parses_against_its_config(doc, command):
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from brainage.runs.cli import quote_path_templates

    words = shlex.split(re.sub(r"<[^<>\s]+>", "placeholder", command), comments=True)
    while re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # KERAS_BACKEND=jax, CUDA_VISIBLE_DEVICES=…
        words.pop(0)
    if words[0] == "make":
        targets, make_stage, own = _makefile()
        target, args = words[1], words[2:]
        assert target in targets, f"{doc}: make has no target {target!r} ({sorted(targets)})"
        args = [a for a in args if a.split("=", 1)[0] not in own]
        if target not in make_stage:  # test, test-fast, install, clean-outputs: no config
            assert not args, f"{doc}: make {target} takes no overrides, got {args}"
            return
        stage = make_stage[target]
    else:
        stage, args = words[2].removeprefix("brainage."), words[3:]
        if "." in stage or stage not in _stage_configs():  # a plain script: it must exist
            path = REPO / (words[2].replace(".", "/") + ".py")
            assert path.is_file(), f"{doc}: no module {words[2]}"
            return
    overrides = [a for a in quote_path_templates(args) if a not in ("-m", "--multirun")]
    parsed = OverridesParser.create().parse_overrides(overrides)
    first_jobs = [f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}"
                  if o.is_sweep_override() else o.input_line for o in parsed]  # a sweep's first job
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(_stage_configs()[stage], overrides=first_jobs, return_hydra_config=True)
    OmegaConf.to_container(cfg, resolve=False)
    for override in parsed:  # every value the command sets resolves (${hydra:…} only in a run)
        key = override.key_or_group
        if key.startswith("hydra") or override.is_delete() or (CONFIGS / key).is_dir():
            continue  # Hydra's own settings, a deletion, a config group's option (composed above)
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
        if OmegaConf.is_config(value):
            OmegaConf.to_container(value, resolve=True)

"""The architecture as a check: the import contract (pyproject.toml) and the size of every room."""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import REPO

PACKAGE = REPO / "brainage"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's contracts of ``root/pyproject.toml``, checked on the package under ``root``."""
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command;"
                           " lint_imports_command()", "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contract_is_kept():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_the_contract_sees_an_import_inside_a_function(tmp_path):
    """A library that imports a stage inside a function breaks the contract."""
    shutil.copytree(PACKAGE, tmp_path / "brainage", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    model = tmp_path / "brainage" / "model" / "__init__.py"
    model.write_text(model.read_text() + "\n\ndef _sneaky():\n    from brainage import explain\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1
    assert "brainage.model -> brainage.explain" in result.stdout


def test_the_contracts_see_a_cycle_and_a_sibling_workflow_import(tmp_path):
    """A cycle hidden behind an import inside a function, and a workflow package importing a
    sibling workflow package, each break their contract."""
    shutil.copytree(PACKAGE, tmp_path / "brainage", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    neuro = tmp_path / "brainage" / "neuro"
    (neuro / "planted_a.py").write_text("from brainage.neuro import planted_b  # noqa: F401\n")
    (neuro / "planted_b.py").write_text("def _hidden():\n    from brainage.neuro import planted_a\n")
    explaining = tmp_path / "brainage" / "explaining" / "__init__.py"
    explaining.write_text(explaining.read_text() + "\n\ndef _sideways():\n"
                          "    from brainage import training\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1
    assert "0 kept, 2 broken" in result.stdout
    assert "No cycles are allowed in brainage.neuro" in result.stdout
    assert "brainage.explaining -> brainage.training" in result.stdout


def _rooms():
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        yield path.relative_to(REPO), source


@pytest.mark.slow
@pytest.mark.parametrize("path, source", list(_rooms()), ids=lambda v: str(v) if isinstance(v, Path) else "")
def test_no_module_or_function_is_too_big(path, source):
    too_big = []
    lines = source.count("\n")
    if lines > MAX_MODULE_LINES:
        too_big.append(f"{path}: {lines} lines")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                too_big.append(f"{path}:{node.lineno} {node.name}: {length} lines")
    assert not too_big

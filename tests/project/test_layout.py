"""The test tree mirrors the package: ``tests/<package>/test_<topic>.py`` tests ``brainage/<package>/``,
a top-level ``tests/test_<module>.py`` (or ``test_<module>_<topic>.py``) tests the top-level module
``brainage/<module>.py`` (a stage, mostly), and the few folders that test no package are named here."""
from tests.builders import REPO

TESTS = REPO / "tests"
PACKAGE = REPO / "brainage"

# Folders of tests/ that mirror no package of brainage/, each with the reason it exists.
NOT_PACKAGES = {
    "bad_inputs": "every stage's refusals of bad inputs, one matrix of cases across the stages",
    "docs": "README.md and docs/*.md: their commands, links and examples",
    "project": "the project as a whole: Makefile targets, installs, import contract, environment, launchers",
}


def _top_level_modules() -> set:
    return {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


def _test_folders() -> set:
    """Folders under tests/ that hold Python files (a folder left with only __pycache__ is none)."""
    return {path.parent.relative_to(TESTS) for path in TESTS.rglob("*.py")
            if path.parent != TESTS and "__pycache__" not in path.parts
            and not any(part.startswith(".") for part in path.relative_to(TESTS).parts)}


def test_every_top_level_test_file_names_a_top_level_module():
    modules = _top_level_modules()
    strays = [path.name for path in sorted(TESTS.glob("test_*.py"))
              if not any(path.stem[len("test_"):] == m or path.stem[len("test_"):].startswith(m + "_")
                         for m in modules)]
    assert not strays, (f"{strays} name no module brainage/<module>.py: move each into "
                        "tests/<package>/ beside the package it tests (tests/project/ if it tests the whole)")


def test_every_test_folder_mirrors_a_package_or_is_named():
    strays = sorted({f"tests/{folder.as_posix()}" for folder in _test_folders()
                     if not (PACKAGE / folder / "__init__.py").is_file()
                     and folder.as_posix() not in NOT_PACKAGES})
    assert not strays, (f"{strays} mirror no package under brainage/: rename each after the "
                        "package it tests, or add it to NOT_PACKAGES with the reason")


def test_the_named_folders_exist_and_are_no_package():
    for name in NOT_PACKAGES:
        assert (TESTS / name).is_dir(), f"tests/{name} is gone: drop it from NOT_PACKAGES"
        assert not (PACKAGE / name).is_dir(), f"brainage/{name} is a package: tests/{name} mirrors it"


def test_every_test_folder_is_a_python_package():
    """Without ``__init__.py``, two test files of one name in two folders clash at collection."""
    missing = sorted({f"tests/{folder.as_posix()}" for folder in _test_folders()
                      if not (TESTS / folder / "__init__.py").is_file()})
    assert not missing, f"{missing} lack an __init__.py"

# Every user target installs the project into .venv on first use; later calls skip the install.
# Hydra overrides pass straight through:  make train trainer.epochs=2 data.n_subjects=60
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP ?= $(VENV)/.installed-stamp

# Command-line words of the form key=value are Hydra overrides, not make variables for us.
# make keeps them newest-first: restore the user's order, and quote each for the shell.
reverse = $(if $(1),$(call reverse,$(wordlist 2,$(words $(1)),$(1))) $(firstword $(1)))
OVERRIDES := $(foreach o,$(call reverse,$(filter-out VENV=% PYTHON=% PYTEST_ARGS=% STAMP=%,$(MAKEOVERRIDES))),'$(o)')
PYTEST_ARGS ?=

.PHONY: install train explain demo test test-fast bench evaluate infer digits unet cohort clean-outputs

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

train: $(STAMP)
	$(PY) -m brainage.train $(OVERRIDES)

explain: $(STAMP)
	$(PY) -m brainage.explain $(OVERRIDES)

evaluate: $(STAMP)
	$(PY) -m brainage.evaluate $(OVERRIDES)

infer: $(STAMP)
	$(PY) -m brainage.infer $(OVERRIDES)

digits: $(STAMP)
	$(PY) -m brainage.seed_digits $(OVERRIDES)

# seed 003: a U-Net segments the hippocampus; guided backprop and DTD explain its mask
unet: $(STAMP)
	$(PY) -m brainage.seed_unet $(OVERRIDES)

cohort: $(STAMP)
	$(PY) -m brainage.cohort $(OVERRIDES)

bench: $(STAMP)
	$(PY) -m brainage.bench $(OVERRIDES)

# train (with the overrides), then explain the run it made
demo: $(STAMP)
	$(PY) -m brainage.train $(OVERRIDES)
	$(PY) -m brainage.explain

# One worker per core (pytest-xdist); the slowest tests are listed at the end.
PYTEST := $(PY) -m pytest -q -n auto --durations=15

test: $(STAMP)
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

clean-outputs:
	rm -rf outputs multirun

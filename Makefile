# Every user target installs what it needs into .venv on first use; later calls skip the install.
#   stage targets (train, explain, ...): the runtime only (TensorFlow, Keras, nilearn, Hydra, ...)
#   make test / test-fast / lint:       the runtime plus the test extras (pytest, ruff, JAX, and the
#                                       peer frameworks PyTorch + Zennit, so CI runs every test)
#   make bench peer=zennit:             the runtime plus the peer extra (PyTorch + Zennit)
# Hydra overrides pass straight through:  make train trainer.epochs=2 data.n_subjects=60
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP ?= $(VENV)/.installed-stamp
TEST_STAMP ?= $(VENV)/.installed-test-stamp
PEER_STAMP ?= $(VENV)/.installed-peer-stamp
PREP_STAMP ?= $(VENV)/.installed-preprocess-stamp

# Command-line words of the form key=value are Hydra overrides, not make variables for us.
# make keeps them newest-first: restore the user's order, and quote each for the shell.
reverse = $(if $(1),$(call reverse,$(wordlist 2,$(words $(1)),$(1))) $(firstword $(1)))
OVERRIDES := $(foreach o,$(call reverse,$(filter-out VENV=% PYTHON=% PYTEST_ARGS=% STAMP=% TEST_STAMP=% PEER_STAMP=% PREP_STAMP=%,$(MAKEOVERRIDES))),'$(o)')
PYTEST_ARGS ?=

.PHONY: install install-test install-peer install-preprocess preprocess predict train explain demo test test-fast lint bench evaluate \
	infer digits unet cohort clean-outputs

install: $(STAMP)
install-test: $(TEST_STAMP)
install-peer: $(PEER_STAMP)
install-preprocess: $(PREP_STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(TEST_STAMP)

$(PEER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[peer]"
	@touch $(PEER_STAMP)

$(PREP_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[preprocess]"
	@touch $(PREP_STAMP)

# raw T1 scans (BIDS raw) to grey-matter maps: make preprocess data.root=../shared/data/ixi
preprocess: $(STAMP) $(PREP_STAMP)
	$(PY) -m brainage.preprocess $(OVERRIDES)

# a finished training run applied to any cohort: make predict train_dir=RUN data.root=DIR
predict: $(STAMP)
	$(PY) -m brainage.predict $(OVERRIDES)

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

# `peer=zennit` on the command line is also a make variable: it pulls in the peer extra first.
bench: $(STAMP) $(if $(filter zennit,$(peer)),$(PEER_STAMP))
	$(PY) -m brainage.bench $(OVERRIDES)

# train (with the overrides), then explain the run it made
demo: $(STAMP)
	$(PY) -m brainage.train $(OVERRIDES)
	$(PY) -m brainage.explain

# One worker per core (pytest-xdist); the slowest tests are listed at the end.
PYTEST := $(PY) -m pytest -q -n auto --durations=15

lint: $(TEST_STAMP)
	$(PY) -m ruff check brainage tests

test: lint
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(TEST_STAMP)
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

clean-outputs:
	rm -rf outputs multirun

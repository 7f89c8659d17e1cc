# slp: `make demo` runs the whole pipeline on the embedded synthetic corpus; `make test` runs the tests.
# Both install what they need into .venv/ first (so .venv/bin/slp is the CLI).

PYTHON ?= python3
# The CPU build of PyTorch (installed first, so that the unpinned requirement does not pull a CUDA
# build of several GB). On a GPU machine: make install TORCH=torch (or your CUDA wheel).
TORCH  ?= torch==2.13.0
VENV   ?= .venv
SLP    ?= $(VENV)/bin/slp
STAMP  := $(VENV)/.installed

.PHONY: help install test demo view bench clean-demo phoenix-recipe csl-recipe how2sign-recipe
.DEFAULT_GOAL := help

help:
	@echo "make demo    - the demo recipe (recipes/demo): the whole pipeline, trained models included, on the"
	@echo "              embedded synthetic corpus (about 10 min on 2 cores); outputs and the table in demo/"
	@echo "make test    - run the test suite"
	@echo "make view    - after make demo: the browser viewer (slp view) on the demo's models and outputs"
	@echo "make bench   - run the benchmarks in bench/ (figures go to bench/RESULTS.md by hand)"
	@echo "make install - create $(VENV) with slp and its test dependencies"
	@echo "make phoenix-recipe DATA=/path/to/PHOENIX-2014-T  (also csl-recipe, how2sign-recipe)"
	@echo "     a paper's whole experiment on a real corpus; DEVICES=N GPUs, STAGE=N or FROM=N runs a part,"
	@echo "     DRY_RUN=1 prints the stages; outputs in runs/<corpus>/ (RUN=... to change)"

install: $(STAMP)

# Re-installs only when pyproject.toml changes. The pip cap file of some machines does not matter here.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet '$(TORCH)'
	$(VENV)/bin/python -m pip install --quiet -e '.[test,extract]'
	# MediaPipe 0.10.21: the last release shipping the legacy Holistic models; --no-deps because it
	# declares numpy<2 and heavy extras it does not need (the extract extra has what it needs).
	$(VENV)/bin/python -m pip install --quiet --no-deps 'mediapipe==0.10.21' \
	  || echo "mediapipe 0.10.21 has no wheel for this Python: extraction tests will be skipped"
	touch $@

# The viewer's browser test needs chromium (Debian's package); without it (no apt-get, no root)
# that test is skipped with a message.
test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { $$([ "$$(id -u)" = 0 ] || echo sudo -n) sh -c 'apt-get update -qq && apt-get install -y -qq chromium' \
	    >/dev/null 2>&1 && echo "installed chromium (for the viewer's browser test)"; } || \
	  echo "chromium could not be installed with apt-get: the viewer's browser test will be skipped"
	$(VENV)/bin/python -m pytest tests

# slp view on the outputs of `make demo` (VIEW_ARGS=... adds options, e.g. --port 0 or --open).
view: $(STAMP)
	@test -d $(DEMO_DIR)/a2v -a -f $(DEMO_DIR)/concat.test.h5 || { echo "no demo outputs in $(DEMO_DIR)/: run make demo first"; exit 1; }
	$(SLP) view --model A2V-SLP=$(DEMO_DIR)/a2v --model SOKE=$(DEMO_DIR)/soke --model GLOS=$(DEMO_DIR)/glos \
	  --model Text2Sign-Diffusion=$(DEMO_DIR)/diffusion --dictionary $(DEMO_DIR)/dictionary.h5 --glosser $(DEMO_DIR)/t2g \
	  --artifact $(DEMO_DIR)/corpus.norm.h5 --artifact $(DEMO_DIR)/a2v.test.h5 --artifact $(DEMO_DIR)/concat.test.h5 $(VIEW_ARGS)

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

# The real-corpus recipes: numbered shell stages (recipes/<corpus>/run.sh); variables such as DATA,
# DEVICES, STAGE, FROM, DRY_RUN, RUN and POSES pass through the environment.
export DATA DEVICES STAGE FROM DRY_RUN RUN POSES WORKERS
phoenix-recipe csl-recipe how2sign-recipe: $(STAMP)
	SLP=$(SLP) bash recipes/$(@:-recipe=)/run.sh

include recipes/demo/demo.mk

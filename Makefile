# Two commands for a newcomer: `make test` and `make demo`. Both create .venv first.
# On a machine without CUDA, torch is pinned to the local CPU wheel (torch==2.13.0) and
# every later install runs under constraints.txt so nothing can swap in a CUDA build.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv test test-all demo bench lint clean

venv: $(STAMP)

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		echo "CUDA found: installing the default torch build"; \
		$(PIP) install --quiet torch; \
	else \
		echo "No CUDA: installing the CPU wheel torch==2.13.0"; \
		$(PIP) install --quiet torch==2.13.0; \
	fi
	$(PIP) install --quiet -c constraints.txt -e ".[train,eval,hub,dev]"
	@touch $(STAMP)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: venv
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

demo: venv
	@echo "make demo: the end-to-end demo (synthetic scenes -> train -> evaluate -> report)"
	@echo "arrives with a later issue. Until then, try: make test"

bench: venv
	@echo "make bench: benchmarks arrive with the performance issue."

lint: venv
	$(PY) -m ruff check src tests

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache

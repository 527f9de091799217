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
	$(PIP) install --quiet -c constraints.txt -e ".[train,eval,hub,demo,dev,io]"
	@touch $(STAMP)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: venv
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

# make demo: synthetic scenes -> fit tiny VAE -> train tiny depth/normal/matting -> evaluate -> predict
# on photographs -> demo_report/. With MODEL=DIR_OR_HUB_ID (BASE_MODEL=DIR_OR_ID fills the base parts
# it leaves out) or REFERENCE=FILE (a released checkpoint): skip training and run that model.
MODEL ?=
REFERENCE ?=
BASE_MODEL ?= black-forest-labs/FLUX.1-Kontext-dev
DEMO_DIR ?= demo_report
RUN_MODEL := $(if $(MODEL),--model $(MODEL))$(if $(REFERENCE), --reference-checkpoint $(REFERENCE))
demo: venv
	HF_HUB_OFFLINE=$(if $(RUN_MODEL),0,1) $(PY) -m edit2perceive.demo --output-dir $(DEMO_DIR) $(RUN_MODEL) \
		$(if $(RUN_MODEL),--base-model $(BASE_MODEL))

bench: venv
	$(PY) -m benchmarks.bench_inference
	$(PY) -m benchmarks.bench_training
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_metrics.py

lint: venv
	$(PY) -m ruff check src tests examples benchmarks dataset_scripts metrics comfyui

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache demo_report

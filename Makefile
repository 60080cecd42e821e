# mammogan — `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := mammogan

EXP ?= smoke
DATA ?=
FORCE ?=
VERBOSE ?=
PARAMS := params/base.yaml $(if $(filter-out base,$(EXP)),params/$(EXP).yaml)
PIPELINE_FLAGS := $(if $(DATA),--set dataset_root=$(DATA)) $(if $(FORCE),--force) $(if $(filter-out 0,$(VERBOSE)),--verbose)

EXPERIMENTS := exp1_deep exp2_stylegan exp3_baseline exp4_diffaug exp5_conditional exp6_patches exp3_progressive exp7_fastgan
KAGGLE_USER ?= your-kaggle-username
RESUME ?=
# the optional dependency groups installed into .venv: EXTRAS=test,jax adds the jax backend (CI does)
EXTRAS ?= test

.PHONY: help setup reproduce reproduce-all params check-params test test-slow test-all lint format lab clean bench bench-quality gpu-bundle kaggle kaggle-push kaggle-continue

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  variables: EXP=<params/EXP.yaml> (default smoke)  DATA=<dataset root>  FORCE=1 (re-run finished stages)"
	@echo "             VERBOSE=1 (show everything the notebooks' kernels print, framework start-up noise included)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# cv2 now comes from opencv-contrib-python-headless; a venv made before holds opencv-python-headless, whose
	@# files the contrib install would overwrite: remove both so exactly one package owns cv2
	if $(PY) -m pip show --quiet opencv-python-headless 2>/dev/null; then \
		$(PY) -m pip uninstall --quiet --yes opencv-python-headless opencv-contrib-python-headless; fi
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python 3 (mammogan)" >/dev/null
	touch $(STAMP)

setup: $(STAMP) ## create .venv with the pinned dependencies and the notebooks' Jupyter kernel (EXTRAS=test,jax: also jax)

reproduce: setup ## run the pipeline: EXP=smoke on the embedded phantom by default; DATA=/path for real data
	$(PY) -m mammogan_lib.pipeline $(PARAMS) $(PIPELINE_FLAGS)

reproduce-all: setup ## run every experiment (exp1 … exp7) at full scale, one after another; DATA=/path
	set -e; for exp in $(EXPERIMENTS); do \
		$(PY) -m mammogan_lib.pipeline params/base.yaml params/$$exp.yaml $(PIPELINE_FLAGS); \
	done

params: setup ## write params/base.yaml and the notebooks' parameters cells from the config classes (mammogan_lib/core/config.py)
	$(PY) -m mammogan_lib.pipeline.parameters

check-params: setup ## validate the parameter files of EXP without running anything
	$(PY) -m mammogan_lib.pipeline $(PARAMS) $(PIPELINE_FLAGS) --check

# One pytest worker per logical core (at most 4: each holds TensorFlow and torch), files kept whole per
# worker (a file's shared run happens once), every framework on one thread per worker (tests/conftest.py):
# on 2 cores the quick loop took 219 s this way against 352 s in one process, where the frameworks' threads
# already filled both cores. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= logical
PYTEST_WORKERS = -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

test: setup ## the quick loop (under 5 minutes on 2 cores): library tests + the six notebooks end to end on params/tiny.yaml
	$(PY) -m pytest -m "not slow" $(PYTEST_WORKERS)

test-slow: setup ## what the quick loop cannot afford: other backends and devices, other pipeline modes, the smoke run, the Kaggle kernel, kill-and-resume processes; CI runs it
	$(PY) -m pytest -m slow $(PYTEST_WORKERS)

test-all: setup ## both tiers in one run
	$(PY) -m pytest $(PYTEST_WORKERS)

lint: setup ## ruff (lint and format of the library, tests, notebooks) and import-linter (the library's floors, no import loops); CI runs it
	$(PY) -m ruff check mammogan_lib tests notebooks
	$(PY) -m ruff format --check mammogan_lib tests notebooks
	$(VENV)/bin/lint-imports --no-cache

format: setup ## ruff format the library, the tests and the notebooks
	$(PY) -m ruff format mammogan_lib tests notebooks

bench: setup ## speed benchmark: classic Keras loop vs our train step, 02 + feature throughput -> runs/bench/bench.json (BENCH_ARGS=...)
	$(PY) -m mammogan_lib.bench $(BENCH_ARGS)

bench-quality: setup ## image quality for compute: configurations trained for equal minutes, FD (effnet_lite0) and FRD vs held-out patients -> runs/bench_quality/ (DATA=, QUALITY_ARGS=...)
	$(PY) -m mammogan_lib.bench.quality $(if $(DATA),--data $(DATA)) $(QUALITY_ARGS)

# What a GPU machine without TensorFlow lacks to run `python -m mammogan_lib.bench.gpu` (see its doc): the keras
# wheel with its dependencies, and this project's wheel (installed there with --no-deps).
gpu-bundle: setup ## dist/gpu/: the wheels the GPU check needs on a machine with jax and torch but no TensorFlow
	rm -rf dist/gpu && mkdir -p dist/gpu
	$(PY) -m pip download --quiet --dest dist/gpu keras==$$($(PY) -c 'import keras; print(keras.__version__)')
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist/gpu .
	rm -f dist/gpu/numpy-*.whl
	du -sh dist/gpu

kaggle: setup ## build kaggle/<exp_id>/ (kernel + library dataset) for EXP; KAGGLE_USER=<you> RESUME=1
	$(PY) -m mammogan_lib.kaggle $(EXP) --user $(KAGGLE_USER) $(if $(RESUME),--resume)

kaggle-push: setup ## build, then upload the library dataset and push the kernel of EXP (kaggle CLI + token)
	$(PY) -m mammogan_lib.kaggle $(EXP) --user $(KAGGLE_USER) $(if $(RESUME),--resume) --push

kaggle-continue: setup ## next session of EXP: publish the kernel's last output as <user>/mammogan-<exp>-state, attach it, push
	$(PY) -m mammogan_lib.kaggle $(EXP) --user $(KAGGLE_USER) --continue

lab: setup ## open Jupyter Lab on the project's environment (kernel "Python 3 (mammogan)"; as root too)
	$(VENV)/bin/jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root)

clean: ## remove runs/ and generated data/ (keeps .venv)
	rm -rf runs data

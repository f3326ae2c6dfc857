# One entry point per job; each first makes sure the environment is ready
# (tools/setup_env.sh is idempotent and quick when nothing changed).
VENV ?= .venv
PY := $(VENV)/bin/python
export MMEFORMER_VENV := $(abspath $(VENV))
# Set KEEP_TORCH=1 to keep an existing (e.g. CUDA) torch: see tools/setup_env.sh.
SETUP_FLAGS := $(if $(filter 1,$(KEEP_TORCH)),--keep-torch,)
PYTEST_ARGS ?=

.PHONY: env test test-fast demo demo-seg check-env

env:
	bash tools/setup_env.sh $(SETUP_FLAGS)

check-env: env
	$(PY) tools/check_env.py

# Everything; CI passes --durations through PYTEST_ARGS (see .ci/run).
test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

# The unit tests only: no end-to-end tool, demo, install, quantization or
# multi-process run (the tests marked slow).
test-fast: env
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

demo: env
	$(PY) tools/demo.py detection

demo-seg: env
	$(PY) tools/demo.py segmentation

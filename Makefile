# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: setup test demo bench clean

setup: $(STAMP)

# Idempotent: reinstalls only when pyproject.toml changes. torch is installed first, pinned,
# so that no later requirement can pull a CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[train,ros,dev]"
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

demo: setup
	$(BIN)/pgr list
	$(BIN)/pgr bench sim --task quadruped-flat --backend mujoco --num-envs 1024 --seconds 10

bench: setup
	$(BIN)/pgr bench sim --task quadruped-flat --backend mujoco --num-envs 1024 --seconds 10 --json

clean:
	rm -rf $(VENV) build *.egg-info

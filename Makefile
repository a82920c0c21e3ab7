# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

DEMO    ?= runs/demo
MINUTES ?= 20

.PHONY: setup sysdeps test test-compat demo bench bench-train clean

setup: $(STAMP) sysdeps

# Headless rendering (`pgr play`) needs OSMesa, the live-viewer tests (`pgr play --viewer`) Xvfb and xdotool;
# installed through apt when we are root and they are missing.
sysdeps:
	@ldconfig -p | grep -q libOSMesa || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq libosmesa6 >/dev/null; \
	  else echo "warning: libOSMesa missing: pgr play needs it (apt-get install libosmesa6) or MUJOCO_GL=egl"; fi; }
	@command -v Xvfb >/dev/null && command -v xdotool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq xvfb xdotool >/dev/null; \
	  else echo "warning: Xvfb or xdotool missing: the live-viewer tests skip (apt-get install xvfb xdotool)"; fi; }

# Idempotent: reinstalls only when pyproject.toml changes. torch is installed first, pinned,
# so that no later requirement can pull a CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[train,gpu,ros,dev]"
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The oldest stack pyproject.toml's ranges allow, in an environment of its own: the lower bounds of mujoco and
# gymnasium with gymnasium-robotics (its Fetch tasks run on mujoco 3.3.5 to 3.11), running tests/compat (which
# `make test` does not collect). torch first, pinned to the CPU build, as in setup. tests/compat checks that these
# pins are pyproject.toml's lower bounds.
COMPAT       := .venv-compat
COMPAT_STAMP := $(COMPAT)/.installed
COMPAT_PINS  := mujoco==3.3.5 "gymnasium[mujoco]==1.2.0" gymnasium-robotics==1.4.2

$(COMPAT_STAMP): pyproject.toml
	test -x $(COMPAT)/bin/python || $(PY) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q --upgrade pip
	$(COMPAT)/bin/python -m pip install -q torch==2.13.0
	$(COMPAT)/bin/python -m pip install -q -e ".[train]" $(COMPAT_PINS) "pytest>=8"
	touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP)
	$(COMPAT)/bin/python -m pytest -q tests/compat/test_compat.py

# The main job on a fresh machine: train the quadruped for 20 minutes, evaluate, render, export and check the
# deploy runtime. $(DEMO) is the demo's own scratch run directory and is replaced on every run.
demo: setup
	rm -rf $(DEMO)
	$(BIN)/pgr train quadruped-flat --time-budget $(MINUTES) --run-dir $(DEMO)
	$(BIN)/pgr eval $(DEMO) --record $(DEMO)/eval_record.npz --out $(DEMO)/eval.json | tee $(DEMO)/eval.txt
	$(BIN)/pgr play $(DEMO) --video $(DEMO)/walk.mp4
	$(BIN)/pgr export $(DEMO)
	$(BIN)/pgr bench deploy --policy $(DEMO)/policy.onnx
	$(BIN)/pgr sim2sim --policy $(DEMO)/policy.onnx --eval $(DEMO)/eval.json | tee $(DEMO)/sim2sim.txt
	@echo "video:           $(DEMO)/walk.mp4"
	@echo "learning curves: $(DEMO)/learning_curves.png   (TensorBoard: $(BIN)/tensorboard --logdir $(DEMO))"
	@echo "eval:            $(DEMO)/eval.txt"
	@echo "policy:          $(DEMO)/policy.onnx + policy.yaml"
	@echo "sim2sim (ROS 2): $(DEMO)/sim2sim.txt   (node logs: $(DEMO)/sim2sim_logs/)"

bench: setup
	$(BIN)/pgr bench sim --task quadruped-flat --backend mujoco --num-envs 2048 --seconds 10 --json
	test ! -f $(DEMO)/policy.onnx || $(BIN)/pgr bench deploy --policy $(DEMO)/policy.onnx --json

# Our PPO beside rsl_rl's (the anchor) on the same task, recipe and clock. rsl-rl-lib lives in an environment of its
# own, never in pg_robotics' dependencies. MINUTES of training each; SEEDS=0,1,2 for the seed-to-seed spread.
ANCHOR  := .venv-anchor
SEEDS   ?= 0
bench-train: setup
	test -x $(ANCHOR)/bin/python || $(PY) -m venv $(ANCHOR)
	$(ANCHOR)/bin/python -m pip install -q torch==2.13.0
	$(ANCHOR)/bin/python -m pip install -q -e ".[train]" rsl-rl-lib==5.5.1
	$(BIN)/pgr bench train --minutes $(MINUTES) --seeds $(SEEDS) --anchor-python $(ANCHOR)/bin/python --out runs/bench_train

clean:
	rm -rf $(VENV) $(ANCHOR) $(COMPAT) build *.egg-info

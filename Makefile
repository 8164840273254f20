# Two commands for a new user (see README):
#   make demo   set up, then run the local lifecycle demo
#   make test   set up, then run the whole test suite (what CI runs)
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The Lambda runtime is python3.12; the venv uses the same minor version. Use a
# python3.12 from PATH, else one installed with pyenv.
PYTHON312 ?= $(shell for p in python3.12 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -n 1); do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null && { echo "$$p"; break; }; done)

.PHONY: setup demo test lint build bench clean

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON312)" ]; then echo "error: Python 3.12 not found. Install it (for example 'pyenv install 3.12') or pass PYTHON312=/path/to/python3.12" >&2; exit 1; fi
	@echo "==> creating $(VENV) with $(PYTHON312)"
	@test -x $(BIN)/python || $(PYTHON312) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> installing autoloop with its dev extras (about a minute the first time)"
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

demo: setup
	@$(BIN)/autoloop local demo

test: setup
	@$(BIN)/python -m pytest

lint: setup
	@$(BIN)/ruff check src functions localaws tests bench
	@$(BIN)/mypy

build: setup
	@PATH=$(abspath $(BIN)):$$PATH $(BIN)/sam build --template-file template.yaml

bench: setup
	@$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .aws-sam .autoloop

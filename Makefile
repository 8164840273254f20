# Two commands for a new user (see README):
#   make demo   set up, then run the local lifecycle demo
#   make test   set up, then run the whole test suite (what CI runs)
# and `make test-fast` for the fast tier while working.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The Lambda runtime is python3.12; the venv uses the same minor version. Use a
# python3.12 from PATH, else one installed with pyenv.
PYTHON312 ?= $(shell for p in python3.12 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -n 1); do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null && { echo "$$p"; break; }; done)

.PHONY: setup browser checkov asl-validator sdk2 sdk3 awscli evidently bench-deps demo test test-fast lint build bench bench-quick clean

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON312)" ]; then echo "error: Python 3.12 not found. Install it (for example 'pyenv install 3.12') or pass PYTHON312=/path/to/python3.12" >&2; exit 1; fi
	@echo "==> creating $(VENV) with $(PYTHON312)"
	@mkdir -p $(VENV)  # first, race-free: `make test` builds checkov's venv inside it at the same time
	@test -x $(BIN)/python || $(PYTHON312) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> installing autoloop with its dev extras (about a minute the first time)"
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

demo: setup
	@$(BIN)/autoloop local demo

# Headless Chromium (Debian's package) for the report's browser test. Idempotent: installs
# only when it is missing and we are root; otherwise it says how and the test is skipped.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "==> installing chromium for the report's browser test (about a minute and a half)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } || \
		echo "note: could not install chromium; the report's browser test will be skipped"; \
	else echo "note: chromium not found and not root: the report's browser test will be skipped" \
		"(install it with: sudo apt-get install -y chromium)"; fi

# A tool that pins packages the project's venv cannot hold gets a venv of its own inside .venv:
# $(call tool_venv,<name>,<pip requirement>,<what it is, for the progress line>).
define tool_venv
$(VENV)/$(1)/.installed:
	@if [ -z "$(PYTHON312)" ]; then echo "error: Python 3.12 not found (see 'make setup')" >&2; exit 1; fi
	@echo "==> installing $(3) into $(VENV)/$(1)"
	@mkdir -p $(VENV)
	@test -x $(VENV)/$(1)/bin/python || $(PYTHON312) -m venv $(VENV)/$(1)
	@$(VENV)/$(1)/bin/python -m pip install --quiet --upgrade pip
	@$(VENV)/$(1)/bin/python -m pip install --quiet '$(2)'
	@touch $$@

$(1): $(VENV)/$(1)/.installed
endef

# checkov (the template's security scan) pins packages that conflict with pytest and aws-sam-cli.
CHECKOV_VERSION := 3.3.30
$(eval $(call tool_venv,checkov,checkov==$(CHECKOV_VERSION),checkov $(CHECKOV_VERSION) (about a minute the first time)))

# The SageMaker SDK v2 as a user installs it (about 300 MB, 30 s), for tests/sdk.
SDK2_VERSION := 2.257.7
$(eval $(call tool_venv,sdk2,sagemaker==$(SDK2_VERSION),the SageMaker SDK $(SDK2_VERSION)))

# The SageMaker SDK v3 as a user installs it (the `sagemaker` meta-package: about 1 GB with
# mlflow and pyarrow, and its own boto3/botocore), for tests/sdk, which run it against
# `autoloop local serve`; about 85 s the first time.
SDK3_VERSION := 3.27.0
$(eval $(call tool_venv,sdk3,sagemaker==$(SDK3_VERSION),the SageMaker SDK $(SDK3_VERSION) (about a minute and a half the first time)))

# The AWS CLI (v1) for the tests that drive `autoloop local serve` with it. awscli v1 pins
# botocore exactly, which would fight the project's boto3.
AWSCLI_VERSION := 1.45.11
$(eval $(call tool_venv,awscli,awscli==$(AWSCLI_VERSION),the AWS CLI $(AWSCLI_VERSION)))

# evidently, the baseline of bench/monitor.py (python -m bench monitor), in a venv of its own so
# its pins never touch the project's; `make bench-deps` installs it (about a minute).
EVIDENTLY_VERSION := 0.7.23
$(eval $(call tool_venv,evidently,evidently==$(EVIDENTLY_VERSION),evidently $(EVIDENTLY_VERSION) (about a minute the first time)))
bench-deps: evidently

# asl-validator (npm) checks every state machine definition after substitution
# (tests/infra/test_asl.py). Installed under .venv/node; without npm the test is skipped.
ASL_VALIDATOR_VERSION := 4.0.0
$(VENV)/node/.installed:
	@if command -v npm >/dev/null 2>&1; then \
		echo "==> installing asl-validator $(ASL_VALIDATOR_VERSION) into $(VENV)/node"; \
		mkdir -p $(VENV)/node && npm install --prefix $(VENV)/node --no-audit --no-fund --silent \
			'asl-validator@$(ASL_VALIDATOR_VERSION)' && touch $@; \
	else echo "note: npm not found: the asl-validator test will be skipped (install nodejs and npm)"; fi

asl-validator: $(VENV)/node/.installed

# The seven installs run side by side (each is idempotent and quiet once done); then the
# suite runs in 3 pytest-xdist workers, one test file each at a time (module fixtures such
# as a booted local AWS stay in one process). Much of an end-to-end test is waiting, so 3
# workers beat 2 on a 2-core machine. `.venv/bin/pytest -n 0 tests/...` runs a subset serially.
test:
	@$(MAKE) --no-print-directory -j7 setup browser checkov asl-validator sdk2 sdk3 awscli
	@$(BIN)/python -m pytest -n 3 --dist loadfile

# The fast tier (about a minute and a half on 2 cores): the domain, the handlers and the
# template checks, without the tests marked slow (checkov, sam build, booting with a KMS key).
FAST_TIER := tests/unit tests/contract tests/handlers tests/badinput tests/infra
test-fast: setup
	@$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow" $(FAST_TIER)

lint: setup
	@$(BIN)/ruff check src functions autoloop_cli localaws tests bench
	@$(BIN)/mypy

build: setup
	@PATH=$(abspath $(BIN)):$$PATH $(BIN)/sam build --template-file template.yaml

# The bench extra (evidently, the SageMaker SDK's training classes) is for the baselines
# only; it is not needed by the tests, which run the quick mode without it.
bench: setup
	@$(BIN)/python -m pip install --quiet -e '.[bench]'
	@$(BIN)/python -m bench

# Every benchmark at small sizes, without the bench extra (about a minute); `make test` runs
# only the quick benchmarks that take seconds (tests/bench).
bench-quick: setup
	@$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .aws-sam .autoloop

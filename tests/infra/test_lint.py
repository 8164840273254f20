"""Lint and type checks run with the tests, so `make test` is all CI needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.infra.template_utils import ROOT

BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=False, timeout=300)


def test_ruff_is_clean():
    result = run(str(BIN / "ruff"), "check", "src", "functions", "autoloop_cli", "localaws", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_domain_package_passes_mypy_strict():
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr

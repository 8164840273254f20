"""Shared fixtures: fake AWS credentials, no real endpoint, clean Powertools state (helpers: tests/support.py)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support import use_fake_aws

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"

# Powertools reads these when autoloop.observability is first imported, which may happen
# while tests are collected, before any fixture runs. Lambda sets them before import too.
for _var, _value in {"POWERTOOLS_SERVICE_NAME": "autoloop", "POWERTOOLS_METRICS_NAMESPACE": "Autoloop",
                     "POWERTOOLS_TRACE_DISABLED": "true"}.items():
    os.environ.setdefault(_var, _value)
# Local jobs run on the project's venv unless a test asks for an image's local runtime
# (tests/e2e/test_runtimes.py): whatever runtimes this machine has built, the suite is the same.
os.environ["AUTOLOOP_LOCAL_RUNTIME"] = "project"


@pytest.fixture(scope="session", autouse=True)
def _one_botocore_loader() -> Iterator[None]:
    """moto's ``mock_aws`` gives each test a new boto3 default session, and each new session
    parsed botocore's service models (JSON files, megabytes for SageMaker) again: about
    0.2 s a handler test. One loader for the run parses each once (the files never change)."""
    import botocore.loaders
    import botocore.session

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", functools.cache(botocore.loaders.create_loader))
        yield


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake AWS environment (pointing at the module's local AWS server, if one runs),
    fresh adapter clients, and Powertools' metrics cleared after the test."""
    use_fake_aws(monkeypatch)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "autoloop")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Autoloop")
    from autoloop import adapters

    adapters.reset_clients()
    yield
    adapters.reset_clients()
    from autoloop.observability import metrics

    metrics.clear_metrics()


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py under a unique name (every handler is app.py)."""
    name = f"handler_{function}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def lambda_context() -> Any:
    class Context:
        function_name = "test-function"
        function_version = "$LATEST"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
        memory_limit_in_mb = 256
        aws_request_id = "00000000-0000-0000-0000-000000000000"
        log_group_name = "/aws/lambda/test-function"
        log_stream_name = "2026/11/25/[$LATEST]0"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 30_000

    return Context()


# -- figures --------------------------------------------------------------------------------
# Tests that measure something (the fault matrix, the burst counts, the load test, ...) call
# ``record_property("figures", text)``. The text is printed in one section at the end of the
# run, in the normal output (no -s needed), also when pytest-xdist runs the tests in workers.


def pytest_terminal_summary(terminalreporter: Any) -> None:
    blocks = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "figures" and getattr(report, "when", "call") == "call":
                    blocks.append((report.nodeid, str(value)))
    if blocks:
        terminalreporter.section("figures")
        for nodeid, text in sorted(blocks):
            terminalreporter.write_line(f"{nodeid}:")
            for line in text.splitlines():
                terminalreporter.write_line(f"  {line}")

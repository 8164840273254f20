"""Handler tests run against moto with the resources of the real template.yaml.

The template is booted into moto's CloudFormation (localaws.cloudformation.stack), so bucket, table,
topic and group names, and each function's environment, come from the template and can't
drift from it. No extension runs here: SageMaker jobs are moto's plain records.

The stack has the longest name the template accepts (``naming.MAX_STACK_NAME``), and every
request a handler sends is checked against the service model's patterns and limits
(``tests/request_rules.py``), which moto does not check: a request AWS would refuse fails
the test that made it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from autoloop.naming import MAX_STACK_NAME
from autoloop_cli.publish import publish
from tests.conftest import ROOT
from tests.request_rules import recording
from tests.support import Notifications, StackInfo

STACK = "autoloop-test-" + "x" * (MAX_STACK_NAME - len("autoloop-test-"))


@dataclass
class Deployed(StackInfo):
    monkeypatch: pytest.MonkeyPatch
    queue: Notifications | None = None

    def use_env(self, function: str) -> dict[str, str]:
        """Apply the deployed function's environment, as Lambda would."""
        env = self.function_environment(function)
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        return env

    def notifications(self) -> list[dict[str, Any]]:
        """Messages published to the notification topic since the last call."""
        assert self.queue is not None
        return self.queue.read()


@contextmanager
def plain_moto() -> Iterator[None]:
    """moto with the TLS-only bucket policy evaluated, and with the local AWS's delivery and
    job extensions off: handlers are called directly, so nothing must run behind their back
    (e2e modules run earlier may have installed them). They are put back afterwards."""
    from localaws.extensions import for_handler_tests

    with for_handler_tests(), mock_aws():
        yield


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    from localaws.cloudformation.stack import deploy

    with plain_moto():
        stack = deploy(ROOT / "template.yaml", stack_name=STACK)
        result = Deployed(dict(stack.outputs), dict(stack.resources), monkeypatch)
        result.queue = Notifications(result.outputs["NotificationTopicArn"])
        publish(boto3.client("s3"), result.artifacts_bucket)
        yield result


@pytest.fixture(autouse=True)
def requests_fit_the_service_models() -> Iterator[None]:
    """Fail the test if a handler sent a request that AWS would refuse (pattern, length, enum)."""
    with recording() as recorder:
        yield
    if dump := os.environ.get("AUTOLOOP_RECORD_CALLS"):  # what the handler tests exercise (for coverage)
        with open(dump, "a", encoding="utf-8") as out:
            out.writelines(f"{r.service} {r.method}\n" for r in recorder.requests)
    problems = recorder.violations()
    assert not problems, "requests AWS would refuse:\n" + "\n".join(problems)

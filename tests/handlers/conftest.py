"""Handler tests run against moto with the resources of the real template.yaml.

The template is booted into moto's CloudFormation (localaws.cloudformation.stack), so bucket, table,
topic and group names, and each function's environment, come from the template and can't
drift from it. No extension runs here: SageMaker jobs are moto's plain records.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from autoloop_cli.publish import publish
from tests.conftest import ROOT
from tests.support import Notifications, StackInfo

STACK = "autoloop-test"


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
    from localaws.awslambda import runtime as lambda_runtime
    from localaws.events import delivery as eventbridge
    from localaws.s3 import policy as s3_policy
    from localaws.sagemaker import registry as sagemaker_registry
    from localaws.sagemaker.endpoints import service as sagemaker_endpoints
    from localaws.sagemaker.jobs import runner as sagemaker_jobs
    from localaws.sagemaker.monitor import service as model_monitor

    s3_policy.install()
    extensions = [e for e in (sagemaker_jobs, sagemaker_registry, sagemaker_endpoints, model_monitor, eventbridge,
                              lambda_runtime) if e.installed()]
    for extension in extensions:
        extension.uninstall()
    try:
        with mock_aws():
            yield
    finally:
        for extension in extensions:
            extension.install()


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    from localaws.cloudformation.stack import deploy

    with plain_moto():
        stack = deploy(ROOT / "template.yaml", stack_name=STACK)
        result = Deployed(dict(stack.outputs), dict(stack.resources), monkeypatch)
        result.queue = Notifications(result.outputs["NotificationTopicArn"])
        publish(boto3.client("s3"), result.artifacts_bucket)
        yield result

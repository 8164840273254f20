"""What the test packages share: the fake AWS environment, the notifications queue, and
bounded waits (on an execution, or on any condition).

Fixtures live in tests/conftest.py and call these; test modules import them directly. A
wait polls for a positive signal and fails the test with a message when it does not come
within its timeout (a hang guard, generous on purpose: it is not a speed check).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


# --------------------------------------------------------------------------- fake AWS environment
def use_fake_aws(monkeypatch: pytest.MonkeyPatch, *, local_server: bool = True) -> None:
    """moto's fake credentials and region; no profile, session token or endpoint of the
    machine's own. With ``local_server``, clients point at the local AWS server when a
    module's fixture runs one in this process (``localaws.server.start``); else (and without
    a server) boto3 calls go to in-process moto (``mock_aws``) or nowhere."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    for var, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(var, value)
    server = sys.modules.get("localaws.server")  # not imported: no server can be running
    running = server.current() if server is not None and local_server else None
    if running is not None:
        for var, value in server.client_environment(running.endpoint_url, running.port).items():
            monkeypatch.setenv(var, value)


# --------------------------------------------------------------------------- a booted stack
@dataclass
class StackInfo:
    """What a test reads of a stack booted from template.yaml (``localaws.cloudformation.stack``):
    its outputs, its resources (logical id -> physical id) and a function's environment."""

    outputs: dict[str, str]
    resources: dict[str, str]

    @property
    def data_bucket(self) -> str:
        return self.outputs["DataBucketName"]

    @property
    def artifacts_bucket(self) -> str:
        return self.outputs["ArtifactsBucketName"]

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The deployed function's environment variables, as Lambda would set them."""
        config = boto3.client("lambda").get_function_configuration(FunctionName=self.resources[logical_id])
        return dict(config["Environment"]["Variables"])


# --------------------------------------------------------------------------- notifications
class Notifications:
    """An SQS queue subscribed to a stack's notification topic (``NotificationTopicArn``):
    :meth:`read` returns what was published since the last read, oldest first (SNS -> SQS
    delivery is synchronous in moto: a message is there when its publisher has returned)."""

    def __init__(self, topic_arn: str, queue_name: str = "notifications") -> None:
        sqs = boto3.client("sqs")
        self.queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def read(self) -> list[dict[str, Any]]:
        sqs, found = boto3.client("sqs"), []
        while batch := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found


# --------------------------------------------------------------------------- waits
def wait_until[T](check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call ``check`` until it returns something true; return that. Fails the test with
    ``what`` (what never happened) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)
    return result


def wait_for_execution(execution_arn: str, timeout: float = 30.0, sfn: Any = None) -> dict[str, Any]:
    """DescribeExecution once the execution has left RUNNING."""
    sfn = sfn or boto3.client("stepfunctions")

    def ended() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=execution_arn)
        return None if described["status"] == "RUNNING" else described

    return wait_until(ended, timeout, f"execution {execution_arn} still RUNNING")


def wait_for_executions(execution_arns: Iterable[str], timeout: float, sfn: Any = None) -> dict[str, dict[str, Any]]:
    """DescribeExecution of each execution, once none is RUNNING. One call per poll while
    one runs (the first still running is asked; those that ended are not asked again)."""
    sfn, arns, ended = sfn or boto3.client("stepfunctions"), list(execution_arns), {}

    def all_ended() -> bool:
        for arn in arns:
            if arn not in ended:
                if (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
                    return False
                ended[arn] = described
        return True

    wait_until(all_ended, timeout, f"{len(arns)} executions ended", interval=0.2)
    return ended


def find_execution(state_machine_arn: str, match: str | Callable[[dict[str, Any]], bool], timeout: float = 30.0,
                   sfn: Any = None) -> str:
    """The ARN of an execution of the state machine, once one exists that ``match`` accepts:
    a name prefix (execution names are run ids), or a predicate on ListExecutions' item."""
    from autoloop_cli import executions

    sfn = sfn or boto3.client("stepfunctions")
    accepts = (lambda e: e["name"].startswith(match)) if isinstance(match, str) else match

    def found() -> str | None:
        return next((str(e["executionArn"]) for e in executions.executions(sfn, state_machine_arn) if accepts(e)), None)

    return wait_until(found, timeout, f"an execution of {state_machine_arn} matching {match!r}", interval=0.1)


def record_processing_job(event: dict[str, Any]) -> dict[str, Any]:
    """Make DescribeProcessingJob answer what a Processing Job State Change event says
    (handlers look the job up rather than trust optional event fields), and return the event
    as AWS's sample has it: without ``Environment``.

    The job is put straight into moto's backend (in this process: plain moto, or the local AWS
    started in-process), Completed, so that nothing runs it; Environment is set on the record
    as the local AWS's job runner sets it (moto keeps none)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemaker.models import FakeProcessingJob, sagemaker_backends

    detail = event["detail"]
    name = detail["ProcessingJobName"]
    account = os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    job = FakeProcessingJob(
        app_specification=detail["AppSpecification"], experiment_config={}, network_config={},
        processing_inputs=detail.get("ProcessingInputs", []), processing_job_name=name,
        processing_output_config=detail["ProcessingOutputConfig"], account_id=account, region_name=region,
        role_arn=detail.get("RoleArn", f"arn:aws:iam::{account}:role/sagemaker"), tags=[],
        stopping_condition=detail.get("StoppingCondition", {"MaxRuntimeInSeconds": 3600}))
    job.environment = detail.get("Environment")
    sagemaker_backends[account][region].processing_jobs[name] = job
    return {**event, "detail": {k: v for k, v in detail.items() if k != "Environment"}}


def seed_package(sagemaker: Any, stack: str, model: str = "churn", **request: Any) -> str:
    """Put a model package straight into the model's group (as a person or another tool would),
    creating the group first as the model's first registration does (``autoloop.registry``)."""
    from botocore.exceptions import ClientError

    from autoloop import registry

    group = registry.package_group_name(stack, model)
    try:
        sagemaker.create_model_package_group(**registry.package_group_request(group, stack, model))
    except ClientError as exc:
        if "already exist" not in str(exc).lower():
            raise
    return str(sagemaker.create_model_package(ModelPackageGroupName=group, **request)["ModelPackageArn"])


# --------------------------------------------------------------------------- example models
def plan_config() -> dict[str, Any]:
    """The multiclass example's config (``datagen.generate_plan``'s columns; accuracy, the
    task's default metric). Until models are folders of their own, it lives in the tests."""
    from autoloop_cli import datagen

    return {
        "model": "plan", "task": "multiclass", "label": datagen.PLAN_LABEL, "columns": list(datagen.PLAN_COLUMNS),
        "numeric_features": list(datagen.PLAN_NUMERIC), "categorical_features": list(datagen.PLAN_CATEGORICAL),
        "threshold": 0.6, "min_rows": 200, "classes": list(datagen.PLANS), "hyperparameters": {"C": 1.0},
    }


def tool(name: str) -> str:
    """A command-line tool of the project's venv (beside this interpreter), else on PATH."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed; run `make setup`"
    return found

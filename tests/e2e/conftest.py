"""End-to-end: the real template, state machine, handlers and ML scripts on the local AWS.

One local AWS (server mode, as the demo uses) is booted per module. Each test uploads its
own object, so each runs its own execution. Retry and Wait delays are scaled down
(localaws.stepfunctions.clock); the ASL is not edited.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from autoloop_cli import executions
from tests.conftest import ROOT
from tests.support import Notifications, find_execution

TIME_SCALE = 0.01


@dataclass
class Run:
    description: dict[str, Any]
    path: list[str]
    events: list[dict[str, Any]]
    notifications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.description["status"])

    @property
    def output(self) -> dict[str, Any]:
        return json.loads(self.description.get("output") or "{}")


    @property
    def gate(self) -> dict[str, Any]:
        """The gate's result, also for a run that failed after it (a failed execution has no output)."""
        if self.output.get("gate"):
            return dict(self.output["gate"])
        for event in reversed(self.events):
            details = event.get("stateExitedEventDetails") or {}
            if details.get("name") == "QualityGate":
                return dict(json.loads(details["output"])["gate"])
        raise AssertionError("the run never left QualityGate")


class Local:
    def __init__(self, server: Any, stack: Any) -> None:
        from localaws.clients import client

        self.server = server
        self.stack = stack
        self.outputs = stack.outputs
        self.client = client
        self.queue = Notifications(self.outputs["NotificationTopicArn"], f"notes-{stack.name}")

    def notifications(self) -> list[dict[str, Any]]:
        """What the stack notified since the last call."""
        return self.queue.read()

    def s3_json(self, uri: str) -> dict[str, Any]:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        return dict(json.loads(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()))

    def upload(self, body: bytes, key: str) -> str:
        return self.client("s3").put_object(Bucket=self.outputs["DataBucketName"], Key=key, Body=body)["ETag"]

    def execution_for(self, run_id_prefix: str, timeout: float = 60) -> str:
        """The TrainingPipeline execution whose name (the run id) starts with the prefix."""
        return find_execution(self.outputs["TrainingPipelineArn"], run_id_prefix, timeout, self.client("stepfunctions"))

    def run(self, body: bytes, key: str, timeout: float = 180) -> Run:
        """Upload, then follow the execution that the template's rule starts, to its end."""
        from autoloop.naming import run_id

        before = {e["executionArn"] for e in executions.executions(
            self.client("stepfunctions"), self.outputs["TrainingPipelineArn"])}
        response = self.client("s3").put_object(Bucket=self.outputs["DataBucketName"], Key=key, Body=body)
        expected = run_id(key.split("/")[1], self.outputs["DataBucketName"], key, response["VersionId"])
        arn = self.execution_for(expected)
        assert arn not in before
        sfn = self.client("stepfunctions")
        description = executions.follow(sfn, arn, timeout=timeout)
        events = executions.history(sfn, arn)
        return Run(description, [s.name for s in executions.path(events)], events, self.notifications())


def boot(stack_name: str, parameters: dict[str, str] | None = None,
         churn_config: dict[str, Any] | None = None) -> Iterator[Local]:
    """A local AWS with the stack deployed and ml/ published; ``churn_config`` overrides keys of
    the published churn config (e.g. ``promote_ties`` for modules that upload the same rows again)."""
    from autoloop_cli import publish
    from localaws import server
    from localaws.cloudformation import stack
    from localaws.stepfunctions import clock as sfn_time

    local_aws = server.start()
    sfn_time.set_time_scale(TIME_SCALE)
    try:
        deployed = stack.deploy(ROOT / "template.yaml", stack_name=stack_name, parameters=parameters,
                                project_root=ROOT)
        local = Local(local_aws, deployed)
        publish.publish(local.client("s3"), deployed.outputs["ArtifactsBucketName"])
        if churn_config:
            publish.publish_config_with(local.client("s3"), deployed.outputs["ArtifactsBucketName"], "churn",
                                        churn_config)
        yield local
    finally:
        sfn_time.set_time_scale(1.0)
        local_aws.stop()


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    """A stack for the TrainingPipeline's paths. Its deployment rule is disabled: each
    registration would otherwise start a DeployPipeline (endpoint, baseline, calibration)
    beside the next test, which only costs time here (test_loop covers deployment)."""
    for local_aws in boot("autoloop-e2e"):
        events = local_aws.client("events")
        for rule in events.list_rules()["Rules"]:
            if "PackageApprovalChanged" in rule["Name"]:
                events.disable_rule(Name=rule["Name"])
        yield local_aws

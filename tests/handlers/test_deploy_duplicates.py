"""Duplicate "Model Package State Change" events (SageMaker may send more than one per change,
and EventBridge delivers at least once): each defect they exposed, against moto.

- the DeployPipeline execution is named after the state change, so a copy starts nothing;
- every deploy task waiting on an endpoint keeps its own token (none is overwritten);
- a stale token (the task timed out, or its execution ended) is dropped, not raised;
- a deploy whose target already serves finishes without a second UpdateEndpoint;
- a late event from before a deployment began does not fail the deployment.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from autoloop import adapters, tasks
from tests.conftest import load_event, load_handler
from tests.handlers.conftest import STACK
from tests.handlers.test_deploy_handlers import package_event, register
from tests.handlers.test_jobs_handlers import RecordingStepFunctions

ENDPOINT = f"{STACK}-churn"


class Spy:
    """A real client that also records which operations were called."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


def endpoint_event(name: str = ENDPOINT, status: str = "IN_SERVICE") -> dict:
    event = load_event("sagemaker_endpoint_in_service")
    event["detail"].update({"EndpointName": name, "EndpointStatus": status})
    return event


def token_item(deployed) -> dict | None:
    return boto3.client("dynamodb").get_item(TableName=deployed.resources["TaskTokenTable"],
                                             Key={"job_name": {"S": f"endpoint:{ENDPOINT}"}}).get("Item")


@pytest.fixture
def plan(deployed, lambda_context):
    deployed.use_env("PlanDeploymentFunction")
    return load_handler("plan_deployment").handler(package_event(register()), lambda_context)


@pytest.fixture
def sfn():
    recorder = RecordingStepFunctions()
    adapters.set_client("stepfunctions", recorder)
    yield recorder
    adapters.set_client("stepfunctions", None)


def serve(deployed, plan, context) -> None:
    """Make the endpoint InService on the plan's config (moto's endpoints are at once)."""
    deployed.use_env("DeployEndpointFunction")
    load_handler("deploy_endpoint").handler({"plan": plan}, context)
    sm = boto3.client("sagemaker")
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == plan["config_name"]


# ----------------------------------------------------------------------------- execution names
def test_every_copy_of_an_approval_starts_one_deploy_execution(deployed, lambda_context):
    deployed.use_env("StartDeploymentFunction")
    start = load_handler("start_deployment").handler
    event = package_event(register())
    first = start(event, lambda_context)
    copy = dict(event, id="another-event-id")  # SageMaker's second event for the same change
    again = start(copy, lambda_context)
    assert first["started"] is True and again == {"started": False, "duplicate": True,
                                                  "execution_name": first["execution_name"], "status": "RUNNING"}
    machine = deployed.outputs["DeployPipelineArn"]
    names = [e["name"] for e in boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]]
    assert names == [first["execution_name"]]
    assert first["execution_name"].startswith("churn-v1-approved-")


def test_a_new_state_change_of_the_same_package_is_a_new_execution(deployed, lambda_context):
    """Approved, Rejected, approved again: three changes, three executions."""
    deployed.use_env("StartDeploymentFunction")
    start = load_handler("start_deployment").handler
    arn = register()
    names = []
    for status, stamp in (("Approved", "2026-11-01T03:30:14Z"), ("Rejected", "2026-11-01T04:00:00Z"),
                          ("Approved", "2026-11-01T05:00:00Z")):
        event = package_event(arn, status=status)
        event["detail"]["LastModifiedTime"] = stamp
        names.append(start(event, lambda_context)["execution_name"])
    assert len(set(names)) == 3 and "-rejected-" in names[1]


def test_an_event_of_another_stack_starts_nothing_and_says_why(deployed, lambda_context):
    from autoloop import errors

    deployed.use_env("StartDeploymentFunction")
    with pytest.raises(errors.InvalidEvent, match="does not belong to this stack"):
        load_handler("start_deployment").handler(load_event("sagemaker_model_package_other_group"), lambda_context)


# ----------------------------------------------------------------------------- token store
def test_two_deploy_tasks_waiting_on_one_endpoint_are_both_completed(deployed, plan, sfn, lambda_context):
    """The old store kept one token per endpoint: the second park overwrote the first, whose
    execution then waited for its timeout."""
    table = deployed.resources["TaskTokenTable"]
    tasks.park_endpoint_task(table, ENDPOINT, "tok-first", "arn:exec:1", plan["config_name"])
    tasks.park_endpoint_task(table, ENDPOINT, "tok-second", "arn:exec:2", plan["config_name"])
    tasks.park_endpoint_task(table, ENDPOINT, "tok-second", "arn:exec:2", plan["config_name"])  # a retried park
    assert int(token_item(deployed)["waiting"]["N"]) == 2
    serve(deployed, plan, lambda_context)

    deployed.use_env("JobCallbackFunction")
    callback = load_handler("job_callback").handler
    result = callback(endpoint_event(), lambda_context)
    assert result["tasks"] == {plan["config_name"]: "completed"}
    assert sorted(kwargs["taskToken"] for kind, kwargs in sfn.calls if kind == "success") == ["tok-first",
                                                                                              "tok-second"]
    assert token_item(deployed) is None  # nothing orphaned
    # the event's duplicate finds nothing left to do
    assert "ignored" in callback(endpoint_event(), lambda_context)
    assert len(sfn.calls) == 2


def test_a_stale_deploy_token_is_dropped_not_raised(deployed, plan, lambda_context):
    """TaskTimedOut (the wait timed out and the reconcile took over): the old callback raised,
    so the event's delivery failed and was retried for nothing."""
    closed = RecordingStepFunctions(closed=True)
    adapters.set_client("stepfunctions", closed)
    try:
        tasks.park_endpoint_task(deployed.resources["TaskTokenTable"], ENDPOINT, "tok-old", "arn:exec",
                                 plan["config_name"])
        serve(deployed, plan, lambda_context)
        deployed.use_env("JobCallbackFunction")
        result = load_handler("job_callback").handler(endpoint_event(), lambda_context)
    finally:
        adapters.set_client("stepfunctions", None)
    assert result["tasks"] == {plan["config_name"]: "already-closed"}
    assert token_item(deployed) is None


@pytest.mark.parametrize("code", sorted(tasks.STALE_TOKEN_CODES))
def test_every_stale_token_code_is_dropped(deployed, code):
    from botocore.exceptions import ClientError

    class Closed:
        def send_task_success(self, **kwargs):
            raise ClientError({"Error": {"Code": code, "Message": "gone"}}, "SendTaskSuccess")

    adapters.set_client("stepfunctions", Closed())
    try:
        assert tasks.send_endpoint_outcome("tok", ENDPOINT, {"status": "InService"}) == "already-closed"
    finally:
        adapters.set_client("stepfunctions", None)


def test_a_late_event_from_before_the_deployment_does_not_fail_it(deployed, plan, sfn, lambda_context, monkeypatch):
    """Delivered out of order, an InService event of the previous config can arrive after the
    new deployment parked its task: the endpoint has not changed since, so the task waits. A
    rollback fails the task, and is logged against the training run that deployed that config."""
    from autoloop import tracking

    rollbacks = []
    monkeypatch.setattr(tracking, "rolled_back", lambda *args: rollbacks.append(args))
    serve(deployed, plan, lambda_context)
    table = deployed.resources["TaskTokenTable"]
    later = time.time() + 5  # parked after the endpoint last changed
    tasks.EndpointWaiters(table, ENDPOINT).park("tok-next", "arn:exec", f"{ENDPOINT}-v2-abcdef", parked_at=later)
    deployed.use_env("JobCallbackFunction")
    result = load_handler("job_callback").handler(endpoint_event(), lambda_context)
    assert result["tasks"] == {f"{ENDPOINT}-v2-abcdef": "waiting"} and sfn.calls == []
    assert token_item(deployed) is not None
    # parked before the endpoint changed (it rolled back after the update): the task fails
    tasks.EndpointWaiters(table, ENDPOINT).park("tok-rolled", "arn:exec", f"{ENDPOINT}-v3-abcdef", parked_at=1.0)
    result = load_handler("job_callback").handler(endpoint_event(), lambda_context)
    assert result["tasks"][f"{ENDPOINT}-v3-abcdef"] == "failed"
    assert sfn.calls[0][1]["error"] == "DeploymentRolledBack"
    [(endpoint, config, reason)] = rollbacks
    assert (endpoint, config) == (ENDPOINT, f"{ENDPOINT}-v3-abcdef") and "rolled back to" in reason


# ----------------------------------------------------------------------------- compare before updating
def test_a_deploy_whose_target_already_serves_completes_without_an_update(deployed, plan, sfn, lambda_context):
    """A duplicate execution (or a retried task) that reaches DeployEndpoint after the update:
    the old code called UpdateEndpoint again, a second blue/green deployment of the same config."""
    serve(deployed, plan, lambda_context)
    spy = Spy(boto3.client("sagemaker"))
    adapters.set_client("sagemaker", spy)
    try:
        deployed.use_env("DeployEndpointFunction")
        plan_again = dict(plan, action="update")
        result = load_handler("deploy_endpoint").handler({"task_token": "tok-dup", "execution": "arn:exec:2",
                                                          "plan": plan_again}, lambda_context)
    finally:
        adapters.set_client("sagemaker", None)
    assert "update_endpoint" not in spy.calls and "create_endpoint" not in spy.calls
    assert result["action"] == "none" and result["task"] == "completed"
    assert sfn.calls == [("success", {"taskToken": "tok-dup", "output": sfn.calls[0][1]["output"]})]
    assert token_item(deployed) is None  # the task was never left parked

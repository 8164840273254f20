"""The Teardown custom resource's function against moto (template resources).

Another stack whose name starts with this one's (``autoloop-test-b``) owns look-alike
resources; only this stack's, by name and ``autoloop:stack`` tag, may go. The response is
read from a real HTTP PUT to a local ResponseURL, as CloudFormation's pre-signed URL would.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from autoloop import adapters, deploy, lifecycle, teardown
from autoloop.monitoring import MonitoringSettings, schedule_request
from tests.conftest import load_handler
from tests.handlers.conftest import STACK

OTHER = f"{STACK}-b"  # its endpoint autoloop-test-b-churn also starts with "autoloop-test-"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


class Responses:
    """The pre-signed ResponseURL: keeps what each PUT sent (body and headers)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.received.append({"body": json.loads(body), "content_type": self.headers.get("Content-Type"),
                                       "path": self.path})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/presigned?X-Amz-Signature=abc"

    @property
    def last(self) -> dict[str, Any]:
        return self.received[-1]["body"]  # type: ignore[no-any-return]


@pytest.fixture
def responses() -> Iterator[Responses]:
    receiver = Responses()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def monitor(deployed: Any) -> Iterator[None]:
    """Monitoring schedules: moto has no such API; localaws.sagemaker.monitor.service adds it."""
    from localaws.sagemaker.monitor import service as model_monitor

    was = model_monitor.installed()
    model_monitor.install()
    yield
    if not was:
        model_monitor.uninstall()


@pytest.fixture
def handler(deployed: Any, monitor: None) -> Any:
    """The teardown of a stack deployed with MonitoringBackend=model-monitor (its schedules are
    SageMaker's); ``test_the_autoloop_backends_scheduler_schedules_go_first`` covers the default."""
    deployed.use_env("TeardownFunction")
    deployed.monkeypatch.setenv("MONITORING_BACKEND", "model-monitor")
    return load_handler("teardown").handler


def context(seconds: float = 60.0) -> Any:
    class Context:
        function_name = "teardown"
        function_version = "$LATEST"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:teardown"
        memory_limit_in_mb = 256
        aws_request_id = "00000000-0000-0000-0000-000000000001"
        log_group_name = "/aws/lambda/teardown"
        log_stream_name = "2026/11/25/[$LATEST]0"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return int(seconds * 1000)

    return Context()


def request(kind: str, url: str, **extra: Any) -> dict[str, Any]:
    event = {"RequestType": kind, "ResponseURL": url, "ServiceToken": "arn:aws:lambda:...:teardown",
             "StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK}/0a1b",
             "RequestId": f"req-{kind.lower()}", "LogicalResourceId": "Teardown", "ResourceType": "Custom::Teardown",
             "ResourceProperties": {"ServiceToken": "arn:aws:lambda:...:teardown", "ServiceTimeout": "960"}}
    if kind != "Create":
        event["PhysicalResourceId"] = f"{STACK}-teardown"
    return {**event, **extra}


def serve(stack: str, model: str = "churn") -> dict[str, str]:
    """What the DeployPipeline and the batch plan create for ``stack``: endpoint, config,
    model, schedule, batch model; tagged as they tag them."""
    sm = boto3.client("sagemaker")
    endpoint = f"{stack}-{model}"
    name = f"{endpoint}-v1-abc123"
    tags = [{"Key": "autoloop:stack", "Value": stack}, {"Key": "autoloop:model", "Value": model}]
    container = {"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz"}
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container, Tags=tags)
    sm.create_model(ModelName=f"{name}-bt", ExecutionRoleArn=ROLE, PrimaryContainer=container, Tags=tags)
    sm.create_endpoint_config(
        EndpointConfigName=name, Tags=tags,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
                             "InstanceType": "ml.m5.large"}],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 100,
                           "DestinationS3Uri": "s3://b/datacapture",
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]},
    )
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=name, Tags=tags)
    sm.create_monitoring_schedule(**schedule_request(
        endpoint=endpoint, artifacts_bucket="b", role_arn=ROLE, instance_type="ml.m5.large",
        constraints_uri="s3://b/c.json", statistics_uri="s3://b/s.json",
        settings=MonitoringSettings(image_uri="156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"),
        max_runtime_seconds=3600, tags=[{"Key": "autoloop:stack", "Value": stack}]))
    return {"endpoint": endpoint, "config": name, "model": name, "batch_model": f"{name}-bt",
            "schedule": f"{endpoint}-dq"}


def running_job(name: str, stack: str) -> str:
    """An in-progress processing job tagged with ``stack`` (moto creates jobs Completed)."""
    from moto.sagemaker.models import sagemaker_backends

    boto3.client("sagemaker").create_processing_job(
        ProcessingJobName=name, RoleArn=ROLE, AppSpecification={"ImageUri": "img"},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 20}},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=[{"Key": "autoloop:stack", "Value": stack}, {"Key": "autoloop:step", "Value": "train"}])
    sagemaker_backends["123456789012"]["us-east-1"].processing_jobs[name].processing_job_status = "InProgress"
    return name


def inventory() -> dict[str, set[str]]:
    sm = boto3.client("sagemaker")
    return {
        "endpoints": {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]},
        "configs": {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]},
        "models": {m["ModelName"] for m in sm.list_models()["Models"]},
        "schedules": {s["MonitoringScheduleName"]
                      for s in sm.list_monitoring_schedules()["MonitoringScheduleSummaries"]},
    }


def job_status(name: str) -> str:
    return str(boto3.client("sagemaker").describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"])


@pytest.mark.parametrize("backend", ["autoloop", "model-monitor"])
def test_the_stacks_scheduler_schedules_go_first(handler, responses, deployed, backend):
    """Each endpoint's monitoring schedule and each model's monthly batch schedule (the deploy
    step puts both) go, with either monitoring backend; another stack's, and a schedule of ours
    by name that starts none of our machines, stay."""
    deployed.monkeypatch.setenv("MONITORING_BACKEND", backend)
    scheduler = boto3.client("scheduler")
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:{}-{}"
    for stack in (STACK, OTHER):
        for name, target in ((f"{stack}-churn-monitor", "monitoring-pipeline"), (f"{stack}-churn-batch",
                                                                                 "batch-transform")):
            scheduler.create_schedule(
                Name=name, ScheduleExpression="cron(0 * * * ? *)", FlexibleTimeWindow={"Mode": "OFF"},
                Target={"Arn": machine.format(stack, target), "RoleArn": ROLE, "Input": "{}"})
    scheduler.create_schedule(
        Name=f"{STACK}-by-hand", ScheduleExpression="cron(0 * * * ? *)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": machine.format(OTHER, "batch-transform"), "RoleArn": ROLE, "Input": "{}"})
    result = handler(request("Delete", responses.url), context())
    assert result["Status"] == "SUCCESS", result
    assert result["deleted"]["monitoring_schedules"] == [f"{STACK}-churn-monitor"]
    assert result["deleted"]["batch_schedules"] == [f"{STACK}-churn-batch"]
    left = {s["Name"] for s in scheduler.list_schedules()["Schedules"]}
    assert left == {f"{OTHER}-churn-monitor", f"{OTHER}-churn-batch", f"{STACK}-by-hand"}


def test_the_rollback_alarms_the_deploy_step_put_go_and_others_stay(handler, responses):
    cloudwatch = boto3.client("cloudwatch")
    for stack in (STACK, OTHER):
        for alarm in deploy.rollback_alarm_requests(f"{stack}-churn", stack=stack, model="churn"):
            cloudwatch.put_metric_alarm(**alarm)
    # A drift alarm a person made (no autoloop:stack tag), like the template's own alarms.
    cloudwatch.put_metric_alarm(AlarmName=f"{STACK}-drift-tenure", Namespace="aws/sagemaker/Endpoints/data-metrics",
                                MetricName="feature_baseline_drift_tenure_months", Statistic="Maximum", Period=3600,
                                EvaluationPeriods=1, Threshold=0.1, ComparisonOperator="GreaterThanThreshold")
    result = handler(request("Delete", responses.url), context())
    assert result["Status"] == "SUCCESS", result
    assert sorted(result["deleted"]["alarms"]) == sorted(deploy.rollback_alarms(f"{STACK}-churn"))
    left = {a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(deploy.rollback_alarms(f"{OTHER}-churn")) <= left and f"{STACK}-drift-tenure" in left
    assert not set(deploy.rollback_alarms(f"{STACK}-churn")) & left


def test_delete_removes_this_stacks_serving_resources_and_stops_its_jobs_only(handler, responses):
    ours, theirs = serve(STACK), serve(OTHER)
    boto3.client("sagemaker").create_model(  # our prefix, but not tagged as ours: not ours to delete
        ModelName=f"{STACK}-by-hand", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})
    ours_job, theirs_job = running_job("churn-0123456789-train", STACK), running_job("churn-9876543210-train", OTHER)

    result = handler(request("Delete", responses.url), context())

    assert result["Status"] == "SUCCESS", result
    left = inventory()
    assert left["endpoints"] == {theirs["endpoint"]}
    assert left["configs"] == {theirs["config"]}
    assert left["models"] == {theirs["model"], theirs["batch_model"], f"{STACK}-by-hand"}
    assert left["schedules"] == {theirs["schedule"]}
    assert (job_status(ours_job), job_status(theirs_job)) == ("Stopped", "InProgress")
    deleted = result["deleted"]
    assert deleted["monitoring_schedules"] == [ours["schedule"]] and deleted["endpoints"] == [ours["endpoint"]]
    assert deleted["endpoint_configs"] == [ours["config"]]
    assert sorted(deleted["models"]) == sorted([ours["model"], ours["batch_model"]])
    assert result["stopped"] == [f"processing job {ours_job}"]

    (sent,) = responses.received
    assert sent["content_type"] == ""  # the pre-signed URL is signed without a Content-Type
    assert sent["body"] == {"Status": "SUCCESS", "Reason": "", "PhysicalResourceId": f"{STACK}-teardown",
                            "StackId": request("Delete", "")["StackId"], "RequestId": "req-delete",
                            "LogicalResourceId": "Teardown", "NoEcho": False, "Data": {}}


@pytest.mark.parametrize("kind", ["Create", "Update"])
def test_create_and_update_delete_nothing_and_answer_success(handler, responses, kind):
    ours = serve(STACK)
    before = inventory()

    result = handler(request(kind, responses.url), context())

    assert result["Status"] == "SUCCESS"
    assert inventory() == before and ours["endpoint"] in before["endpoints"]
    assert responses.last["Status"] == "SUCCESS"
    assert responses.last["PhysicalResourceId"] == f"{STACK}-teardown"
    assert responses.last["RequestId"] == f"req-{kind.lower()}"


class DenyingSageMaker:
    """The real (moto) client, except that DeleteEndpoint is denied."""

    def __init__(self, real: Any, error: str = "AccessDeniedException",
                 message: str = "User is not authorized to perform: sagemaker:DeleteEndpoint") -> None:
        self.real, self.error, self.message = real, error, message

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def delete_endpoint(self, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": self.error, "Message": self.message}}, "DeleteEndpoint")


def test_a_denied_delete_reports_failed_with_the_reason_and_keeps_what_the_endpoint_uses(handler, responses):
    ours = serve(STACK)
    adapters.set_client("sagemaker", DenyingSageMaker(boto3.client("sagemaker")))

    result = handler(request("Delete", responses.url), context())

    assert result["Status"] == "FAILED"
    reason = responses.last["Reason"]
    assert responses.last["Status"] == "FAILED" and reason == result["Reason"]
    assert f"deleting endpoint {ours['endpoint']}: AccessDeniedException" in reason
    assert "configs and models kept" in reason
    left = inventory()
    assert ours["endpoint"] in left["endpoints"] and ours["config"] in left["configs"]
    assert ours["schedule"] not in left["schedules"]  # what could go, went


def test_an_endpoint_that_stays_busy_fails_when_the_time_is_up_instead_of_hanging(handler, responses):
    serve(STACK)
    adapters.set_client("sagemaker", DenyingSageMaker(
        boto3.client("sagemaker"), "ValidationException", "Cannot delete an endpoint in status Updating."))

    result = handler(request("Delete", responses.url), context(seconds=teardown.RESPONSE_MARGIN_SECONDS + 1))

    assert result["Status"] == "FAILED"
    assert "still refused when the time ran out" in responses.last["Reason"]


def test_a_bad_environment_is_answered_failed(handler, responses, monkeypatch):
    monkeypatch.delenv("STACK_NAME")

    result = handler(request("Delete", responses.url), context())

    assert result["Status"] == "FAILED" and "STACK_NAME" in responses.last["Reason"]
    assert responses.last["PhysicalResourceId"] == f"{STACK}-teardown"  # copied from the request


def test_the_response_body_stays_under_cloudformations_limit():
    event = request("Delete", "https://example.invalid/x")
    body = teardown.response_body(event, "FAILED", "x" * 10_000, "p")
    assert len(body) <= teardown.MAX_RESPONSE_BYTES
    assert json.loads(body)["Reason"].endswith("(cut; see the function's log)")


@pytest.mark.parametrize(("name", "tags", "expected"), [
    ("autoloop-test-churn", {"autoloop:stack": "autoloop-test"}, True),
    ("autoloop-test-b-churn", {"autoloop:stack": "autoloop-test-b"}, False),
    ("autoloop-test-churn", {}, False),
    ("other-churn", {"autoloop:stack": "autoloop-test"}, False),
])
def test_ownership_needs_the_name_prefix_and_the_stack_tag(name, tags, expected):
    assert teardown.owns("autoloop-test", name, tags) is expected


def test_an_endpoint_a_deployment_creates_during_the_teardown_is_deleted_too(handler, responses, monkeypatch):
    """A deploy step that planned before the marker creates its endpoint just after the teardown
    listed the endpoints: the teardown looks again and deletes it, and from the marker on a
    new approval plans nothing."""
    ours = serve(STACK)
    real_client, late = teardown.client, {}

    class DeployRacesTheListing:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        def list_endpoints(self, **kwargs: Any) -> Any:
            answer = self._real.list_endpoints(**kwargs)
            if not late:  # the deploy step creates the endpoint; its schedule would come much later
                late.update(serve(STACK, model="late"))
                self._real.delete_monitoring_schedule(MonitoringScheduleName=late["schedule"])
            return answer

    monkeypatch.setattr(teardown, "client",
                        lambda service: DeployRacesTheListing(real_client(service)) if service == "sagemaker"
                        else real_client(service))
    result = handler(request("Delete", responses.url), context())

    assert result["Status"] == "SUCCESS", result
    assert sorted(result["deleted"]["endpoints"]) == sorted([ours["endpoint"], late["endpoint"]])
    assert not {ours["endpoint"], late["endpoint"]} & inventory()["endpoints"]
    assert lifecycle.teardown_started(os.environ["TASK_TOKEN_TABLE"])

"""Stack teardown: on ``sam delete``, remove what the pipelines created outside CloudFormation.

The DeployPipeline creates the endpoint ``<stack>-<model>``, its configs and models
(``<endpoint>-v<N>-<hash>``) and the schedule ``<endpoint>-dq``; the BatchTransform creates
models ``<stack>-<model>-v<N>-<hash>-bt``; both pipelines run jobs. None of them is a
stack resource, so without this CloudFormation would delete the stack and leave the
endpoint running and billing. The template's ``Teardown`` custom resource calls
:func:`handle`; on its ``Delete`` (and only then) :func:`teardown` runs, in this order:

0. write the teardown marker (:mod:`autoloop.lifecycle`, in the task-token table): from then
   on PlanDeployment plans nothing, so a model package approved late (a person in the
   console, or a training run's auto-approval) starts no endpoint while, or after, the
   stack goes;
1. stop the running executions of the stack's state machines (no new endpoint or job is
   started behind our back);
2. stop the in-progress monitoring executions of the stack's schedules, delete the
   schedules (a schedule must go before its endpoint; one still ``Pending`` is retried);
3. stop the stack's in-progress processing, training and transform jobs;
4. delete the stack's endpoints (one still ``Creating``/``Updating`` is retried) and wait
   until they are gone;
   Then once more: stop executions and look for endpoints again, so that one created by a
   deploy step already running when the marker was written (it planned before the marker)
   is deleted too, not left billing;
5. then their endpoint configs (never delete a config an endpoint is using), then the models;
6. wait until the stopped jobs have stopped.

What belongs to this stack: a name that starts with ``<stack>-`` *and* the tag
``autoloop:stack`` = ``<stack>`` (stack ``a`` must not delete ``a-b``'s endpoint
``a-b-churn``). Jobs' names carry no stack, so for them the tag alone decides. A monitoring
schedule belongs to the stack when its name starts with ``<stack>-`` and it monitors one of
the stack's (tag-checked) endpoints; a schedule whose endpoint is already gone is left (its
executions fail without an endpoint; ListTags would need the schedule's tags, which local
mode does not keep).

Failure policy: any resource that could not be deleted, or still exists when the time is
up (the Lambda timeout less a margin for the response), makes the Delete report
``FAILED`` with a reason that names it. CloudFormation then stops the deletion
(``DELETE_FAILED``) with the roles and functions still there, and ``sam delete`` can simply
be run again once the cause is fixed (every step is idempotent). Reporting ``SUCCESS``
instead would delete the very permissions the cleanup needs and leave an endpoint billing
where nobody looks. To give up on the cleanup deliberately:
``aws cloudformation delete-stack --stack-name <stack> --retain-resources Teardown``.
Create and Update do nothing and report ``SUCCESS``.

The response is the documented custom resource response object, PUT to the pre-signed
``ResponseURL`` with an empty Content-Type (the URL is signed without one); there is no
``cfnresponse`` module for zip functions on python3.12, and this is all it would do.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autoloop.adapters import client, error_code
from autoloop.config import Settings
from autoloop.errors import AutoloopError, InvalidEvent
from autoloop.lifecycle import mark_teardown
from autoloop.monitoring import SCHEDULE_GROUP
from autoloop.observability import logger

STACK_TAG = "autoloop:stack"
REQUEST_TYPES = frozenset({"Create", "Update", "Delete"})
#: CloudFormation refuses a response body over 4096 bytes.
MAX_RESPONSE_BYTES = 4096
#: Seconds kept back from the Lambda timeout to send the response.
RESPONSE_MARGIN_SECONDS = 30.0
JOB_KINDS = ("processing", "training", "transform")
RUNNING_JOB = frozenset({"InProgress", "Stopping"})


class TeardownSettings(Settings):
    stack_name: str
    #: The task-token table, where the teardown marker goes.
    task_token_table: str
    #: Comma-separated ARNs of the stack's state machines (their running executions are stopped).
    state_machine_arns: str = ""
    monitoring_backend: str = "autoloop"

    @property
    def machines(self) -> list[str]:
        return [arn.strip() for arn in self.state_machine_arns.split(",") if arn.strip()]


# ----------------------------------------------------------------------------- pure
def owns(stack: str, name: str, tags: Mapping[str, str]) -> bool:
    """A resource named ``<stack>-...`` and tagged ``autoloop:stack=<stack>``."""
    return bool(stack) and name.startswith(f"{stack}-") and tags.get(STACK_TAG) == stack


def physical_id(stack: str) -> str:
    return f"{stack}-teardown"


def response_body(event: Mapping[str, Any], status: str, reason: str, physical_resource_id: str,
                  data: Mapping[str, Any] | None = None) -> bytes:
    """The custom resource response object, with ``Reason`` cut so the body fits 4096 bytes."""
    if status not in {"SUCCESS", "FAILED"}:
        raise ValueError(f"status must be SUCCESS or FAILED, not {status!r}")
    body: dict[str, Any] = {
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": physical_resource_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": dict(data or {}),
    }
    encoded = json.dumps(body).encode()
    if len(encoded) > MAX_RESPONSE_BYTES:
        over = len(encoded) - MAX_RESPONSE_BYTES
        body["Reason"] = reason[: max(0, len(reason) - over - 40)] + " ... (cut; see the function's log)"
        encoded = json.dumps(body).encode()
    return encoded


@dataclass
class Report:
    stopped: list[str] = field(default_factory=list)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    still_stopping: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str) -> None:
        self.deleted.setdefault(kind, []).append(name)

    def summary(self) -> dict[str, Any]:
        return {"stopped": self.stopped, "deleted": self.deleted, "failures": self.failures,
                "still_stopping": self.still_stopping}


class Deadline:
    """Wall-clock budget, with a polling interval that backs off from 0.2 s to 10 s."""

    def __init__(self, seconds: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self._end = time.monotonic() + seconds
        self._sleep = sleep

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def polls(self) -> Iterator[int]:
        """Yield attempt numbers, sleeping between them, until the time is up."""
        attempt, interval = 0, 0.2
        while True:
            yield attempt
            attempt += 1
            if self.remaining() <= 0:
                return
            self._sleep(min(interval, max(self.remaining(), 0.0)))
            interval = min(interval * 2, 10.0)


# ----------------------------------------------------------------------------- AWS
def _paged(call: Callable[..., Any], key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = call(**kwargs, **({"NextToken": token} if token else {}))
        items.extend(page.get(key) or [])
        token = page.get("NextToken")
        if not token:
            return items


def _tags(arn: str) -> dict[str, str]:
    tags = client("sagemaker").list_tags(ResourceArn=arn).get("Tags") or []
    return {str(t["Key"]): str(t["Value"]) for t in tags}


def _gone(exc: ClientError) -> bool:
    """SageMaker says "Could not find ..." (ValidationException) or ResourceNotFound."""
    text = str(exc).lower()
    return error_code(exc) in {"ResourceNotFound", "ResourceNotFoundException"} or "could not find" in text \
        or "not found" in text or "does not exist" in text


def _busy(exc: ClientError) -> bool:
    """Refused because of the resource's current status (Pending, Creating, Updating, ...)."""
    return error_code(exc) in {"ConflictException", "ResourceInUse"} or (
        error_code(exc) == "ValidationException" and "status" in str(exc).lower())


def _problem(what: str, exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", str(exc))
        return f"{what}: {error_code(exc)}: {message}"
    return f"{what}: {type(exc).__name__}: {exc}"


def _delete_with_retry(what: str, call: Callable[[], Any], deadline: Deadline) -> str | None:
    """Call a Delete* until it is accepted or the resource is gone; None, or the problem."""
    last: ClientError | None = None
    for _ in deadline.polls():
        try:
            call()
            return None
        except ClientError as exc:
            if _gone(exc):
                return None
            if not _busy(exc):
                return _problem(what, exc)
            last = exc
    return _problem(f"{what} (still refused when the time ran out)", last) if last else f"{what}: no time left"


def _wait_gone(what: str, describe: Callable[[], Any], deadline: Deadline) -> str | None:
    for _ in deadline.polls():
        try:
            describe()
        except ClientError as exc:
            if _gone(exc):
                return None
            return _problem(f"waiting for {what} to be deleted", exc)
    return f"{what} still exists when the time ran out; run `sam delete` again to finish"


def _stop_executions(machines: list[str], report: Report) -> None:
    sfn = client("stepfunctions")
    for machine in machines:
        try:
            running = _paged(sfn.list_executions, "executions", stateMachineArn=machine, statusFilter="RUNNING")
            for execution in running:
                sfn.stop_execution(executionArn=execution["executionArn"], error="StackDeleted",
                                   cause="The stack is being deleted.")
                report.stopped.append(execution["executionArn"])
        except ClientError as exc:
            report.failures.append(_problem(f"stopping executions of {machine}", exc))


def _owned(stack: str, items: list[dict[str, Any]], name_key: str, arn_key: str,
           report: Report) -> list[dict[str, Any]]:
    """The items named ``<stack>-...`` whose tags say they are this stack's."""
    found = []
    for item in items:
        name = str(item[name_key])
        if not name.startswith(f"{stack}-"):
            continue
        try:
            if owns(stack, name, _tags(str(item[arn_key]))):
                found.append(item)
        except ClientError as exc:
            if not _gone(exc):
                report.failures.append(_problem(f"reading the tags of {name}", exc))
    return found


def _running_jobs(stack: str, report: Report) -> list[tuple[str, str]]:
    """(kind, name) of this stack's in-progress jobs (by tag: job names carry no stack)."""
    sagemaker = client("sagemaker")
    calls = {"processing": (sagemaker.list_processing_jobs, "ProcessingJobSummaries"),
             "training": (sagemaker.list_training_jobs, "TrainingJobSummaries"),
             "transform": (sagemaker.list_transform_jobs, "TransformJobSummaries")}
    jobs = []
    for kind, (call, key) in calls.items():
        prefix = kind.capitalize()
        try:
            for job in _paged(call, key, StatusEquals="InProgress"):
                if _tags(str(job[f"{prefix}JobArn"])).get(STACK_TAG) == stack:
                    jobs.append((kind, str(job[f"{prefix}JobName"])))
        except ClientError as exc:
            report.failures.append(_problem(f"listing in-progress {kind} jobs", exc))
    return jobs


def _stop_job(kind: str, name: str, report: Report) -> None:
    sagemaker = client("sagemaker")
    stop = {"processing": sagemaker.stop_processing_job, "training": sagemaker.stop_training_job,
            "transform": sagemaker.stop_transform_job}[kind]
    key = f"{kind.capitalize()}JobName"
    try:
        stop(**{key: name})
        report.stopped.append(f"{kind} job {name}")
    except ClientError as exc:
        if not (_gone(exc) or _busy(exc)):  # ended or already stopping
            report.failures.append(_problem(f"stopping {kind} job {name}", exc))


def _job_status(kind: str, name: str) -> str:
    sagemaker = client("sagemaker")
    describe = {"processing": sagemaker.describe_processing_job, "training": sagemaker.describe_training_job,
                "transform": sagemaker.describe_transform_job}[kind]
    prefix = kind.capitalize()
    return str(describe(**{f"{prefix}JobName": name})[f"{prefix}JobStatus"])


def _delete_owned(stack: str, kind: str, list_call: Callable[..., Any], key: str,
                  delete: Callable[[str], Any], deadline: Deadline, report: Report) -> None:
    """Delete this stack's endpoint configs or models (``kind``: "endpoint config" or "model")."""
    prefix = "".join(word.capitalize() for word in kind.split())
    try:
        items = _owned(stack, _paged(list_call, key, NameContains=f"{stack}-"), f"{prefix}Name", f"{prefix}Arn",
                       report)
    except ClientError as exc:
        report.failures.append(_problem(f"listing {kind}s", exc))
        return
    for item in items:
        name = str(item[f"{prefix}Name"])
        problem = _delete_with_retry(f"deleting {kind} {name}", partial(delete, name), deadline)
        if problem:
            report.failures.append(problem)
        else:
            report.add(kind.replace(" ", "_") + "s", name)


def _owned_endpoints(stack: str, report: Report) -> set[str]:
    try:
        endpoints = _owned(stack, _paged(client("sagemaker").list_endpoints, "Endpoints", NameContains=f"{stack}-"),
                           "EndpointName", "EndpointArn", report)
    except ClientError as exc:
        report.failures.append(_problem("listing endpoints", exc))
        return set()
    return {str(e["EndpointName"]) for e in endpoints}


def _delete_endpoints(names: set[str], deadline: Deadline, report: Report) -> list[str]:
    """Delete the endpoints and wait until they are gone; the names that remain."""
    sagemaker = client("sagemaker")
    remaining: list[str] = []
    for name in sorted(names):
        problem = _delete_with_retry(f"deleting endpoint {name}",
                                     partial(sagemaker.delete_endpoint, EndpointName=name), deadline)
        if problem:
            report.failures.append(problem)
            remaining.append(name)
    for name in sorted(names - set(remaining)):
        problem = _wait_gone(f"endpoint {name}", partial(sagemaker.describe_endpoint, EndpointName=name), deadline)
        if problem:
            report.failures.append(problem)
            remaining.append(name)
        else:
            report.add("endpoints", name)
    return remaining


def _delete_scheduler_schedules(stack: str, deadline: Deadline, report: Report) -> None:
    """The autoloop backend's EventBridge Scheduler schedules (``<endpoint>-monitor``, those that
    start this stack's MonitoringPipeline), first, so no monitoring run starts while the endpoints go."""
    scheduler = client("scheduler")
    try:
        rows = _paged(scheduler.list_schedules, "Schedules", NamePrefix=f"{stack}-", GroupName=SCHEDULE_GROUP)
    except ClientError as exc:
        report.failures.append(_problem("listing monitoring schedules", exc))
        return
    pipeline = f":stateMachine:{stack}-monitoring-pipeline"
    for row in rows:
        name = str(row["Name"])
        # Ours: it starts this stack's MonitoringPipeline (not the template's own batch schedule,
        # nor a schedule of a stack whose name starts with ours).
        if not str((row.get("Target") or {}).get("Arn", "")).endswith(pipeline):
            continue
        problem = _delete_with_retry(f"deleting schedule {name}",
                                     partial(scheduler.delete_schedule, Name=name, GroupName=SCHEDULE_GROUP), deadline)
        if problem:
            report.failures.append(problem)
        else:
            report.add("monitoring_schedules", name)


def _delete_model_monitor_schedules(stack: str, ours: set[str], deadline: Deadline, report: Report) -> list[str]:
    """MonitoringBackend=model-monitor: stop the running executions of the stack's Model Monitor
    schedules on its endpoints, and delete the schedules. Returns those being deleted."""
    sagemaker = client("sagemaker")
    schedules: list[str] = []
    try:
        for row in _paged(sagemaker.list_monitoring_schedules, "MonitoringScheduleSummaries", NameContains=f"{stack}-"):
            name = str(row["MonitoringScheduleName"])
            if name.startswith(f"{stack}-") and row.get("EndpointName") in ours:
                schedules.append(name)
    except ClientError as exc:
        report.failures.append(_problem("listing monitoring schedules", exc))
    deleting: list[str] = []
    for name in schedules:
        try:
            for run in _paged(sagemaker.list_monitoring_executions, "MonitoringExecutionSummaries",
                              MonitoringScheduleName=name, StatusEquals="InProgress"):
                if run.get("ProcessingJobArn"):
                    _stop_job("processing", str(run["ProcessingJobArn"]).rsplit("/", 1)[-1], report)
        except ClientError as exc:
            report.failures.append(_problem(f"listing the running executions of {name}", exc))
        problem = _delete_with_retry(f"deleting monitoring schedule {name}",
                                     partial(sagemaker.delete_monitoring_schedule, MonitoringScheduleName=name),
                                     deadline)
        if problem:
            report.failures.append(problem)
        else:
            deleting.append(name)
    return deleting


def _wait_model_monitor_schedules_gone(deleting: list[str], deadline: Deadline, report: Report) -> None:
    sagemaker = client("sagemaker")
    for name in deleting:
        problem = _wait_gone(f"monitoring schedule {name}",
                             partial(sagemaker.describe_monitoring_schedule, MonitoringScheduleName=name), deadline)
        if problem:
            report.failures.append(problem)
        else:
            report.add("monitoring_schedules", name)


def teardown(stack: str, machines: list[str], deadline: Deadline, marker_table: str = "",
             monitoring_backend: str = "autoloop") -> Report:
    """Stop and delete what the stack's pipelines created (see the module docstring)."""
    if not stack:
        raise InvalidEvent("no stack name: nothing can be attributed to the stack.")
    report = Report()
    sagemaker = client("sagemaker")
    if marker_table:
        try:
            mark_teardown(marker_table)
        except AutoloopError as exc:
            report.failures.append(_problem("writing the teardown marker", exc))
    _stop_executions(machines, report)

    ours = _owned_endpoints(stack, report)

    if monitoring_backend == "autoloop":
        _delete_scheduler_schedules(stack, deadline, report)
        deleting = []
    else:
        deleting = _delete_model_monitor_schedules(stack, ours, deadline, report)

    jobs = _running_jobs(stack, report)
    for kind, name in jobs:
        _stop_job(kind, name, report)
    _wait_model_monitor_schedules_gone(deleting, deadline, report)

    remaining = _delete_endpoints(ours, deadline, report)
    # A deploy step that planned before the marker may have created an endpoint since the
    # listing above: stop what runs again, and delete any endpoint that appeared.
    _stop_executions(machines, report)
    late = _owned_endpoints(stack, report) - ours
    if late:
        logger.warning("endpoints created during the teardown", extra={"endpoints": sorted(late)})
        remaining += _delete_endpoints(late, deadline, report)

    if remaining:
        report.failures.append(f"endpoint configs and models kept while endpoint(s) {', '.join(remaining)} exist")
    else:
        _delete_owned(stack, "endpoint config", sagemaker.list_endpoint_configs, "EndpointConfigs",
                      lambda n: sagemaker.delete_endpoint_config(EndpointConfigName=n), deadline, report)
        _delete_owned(stack, "model", sagemaker.list_models, "Models",
                      lambda n: sagemaker.delete_model(ModelName=n), deadline, report)

    for kind, name in jobs:
        status = "InProgress"
        for _ in deadline.polls():
            try:
                status = _job_status(kind, name)
            except ClientError as exc:
                status = "gone" if _gone(exc) else status
            if status not in RUNNING_JOB:
                break
        if status in RUNNING_JOB:
            # Stopping is irreversible and needs nothing of the stack: noted, not a failure.
            report.still_stopping.append(f"{kind} job {name} ({status})")
    return report


# ----------------------------------------------------------------------------- the custom resource
def put_response(url: str, body: bytes, attempts: int = 3) -> None:
    """PUT the response object to the pre-signed URL (empty Content-Type: it is signed without one)."""
    if not url.startswith(("https://", "http://")):
        raise InvalidEvent(f"ResponseURL {url[:80]!r} is not an http(s) URL.")
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, method="PUT",  # noqa: S310 (scheme checked above)
                                         headers={"Content-Type": "", "Content-Length": str(len(body))})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                logger.info("response sent", extra={"http_status": response.status})
                return
        except (urllib.error.URLError, TimeoutError) as exc:
            if attempt == attempts:
                raise
            logger.warning("sending the response failed; retrying", extra={"error": str(exc)})
            time.sleep(2.0 * attempt)


class CustomResourceRequest(BaseModel):
    """The fields of a CloudFormation custom resource request that the response needs.

    ``ResponseURL`` stays a plain string: it is a presigned S3 URL, which must not be normalized.
    """

    model_config = ConfigDict(extra="ignore")

    request_type: str = Field(alias="RequestType")
    response_url: str = Field(alias="ResponseURL")
    stack_id: str = Field(alias="StackId")
    request_id: str = Field(alias="RequestId")
    logical_resource_id: str = Field(alias="LogicalResourceId")
    physical_resource_id: str | None = Field(default=None, alias="PhysicalResourceId")

    @classmethod
    def parse(cls, event: Any) -> CustomResourceRequest:
        try:
            return cls.model_validate(event)
        except ValidationError as exc:
            if not isinstance(event, dict):
                raise InvalidEvent("the custom resource request is not a JSON object.") from exc
            missing = [str(error["loc"][0]) for error in exc.errors() if error["loc"]]
            raise InvalidEvent(f"the custom resource request lacks {', '.join(missing)}.") from exc


def handle(event: Any, load_settings: Callable[[], TeardownSettings], remaining_seconds: Callable[[], float],
           send: Callable[[str, bytes], None] = put_response) -> dict[str, Any]:
    """One CloudFormation custom resource request: respond SUCCESS or FAILED, always.

    The settings are loaded inside, so that a bad environment is answered with FAILED
    rather than leaving CloudFormation waiting for a response until its timeout.
    """
    request = CustomResourceRequest.parse(event)
    kind = request.request_type
    resource_id = request.physical_resource_id or ""
    status, reason, result = "SUCCESS", "", {}
    try:
        settings = load_settings()
        resource_id = resource_id or physical_id(settings.stack_name)
        if kind not in REQUEST_TYPES:
            status, reason = "FAILED", f"unknown RequestType {kind!r}"
        elif kind == "Delete":
            budget = remaining_seconds() - RESPONSE_MARGIN_SECONDS
            report = teardown(settings.stack_name, settings.machines, Deadline(budget),
                              marker_table=settings.task_token_table,
                              monitoring_backend=settings.monitoring_backend)
            result = report.summary()
            if report.failures:
                status = "FAILED"
                reason = (f"Teardown of stack {settings.stack_name} left resources behind: "
                          + "; ".join(report.failures))
    except Exception as exc:  # anything unexpected must still answer, not leave CloudFormation waiting
        logger.exception("teardown failed")
        status, reason = "FAILED", _problem(f"{kind} of the teardown resource", exc)
    logger.info("custom resource request", extra={"request_type": kind, "status": status, "reason": reason,
                                                  "result": result})
    send(request.response_url, response_body(event, status, reason, resource_id or request.logical_resource_id))
    return {"RequestType": kind, "Status": status, "Reason": reason, **result}

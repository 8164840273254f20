"""Step Functions tasks that wait on SageMaker: the task-token machinery, in one place.

A Lambda that starts a job (or an endpoint deployment) runs as a ``.waitForTaskToken`` task:
it parks the task token in DynamoDB under the job's name, then creates the job. The job's
state-change event reaches the callback (:func:`handle_sagemaker_event`), which claims the
token and completes the task with the job's described result, or fails it with its reason.
Every wait has a timeout whose reconcile step describes the job (:func:`reconcile_job`,
:func:`reconcile_endpoint`), so a lost event never leaves an execution hanging. A token that
Step Functions no longer knows (the wait timed out and the reconcile took over) is stale:
completing it is a no-op, not an error.

The training, deploy and batch steps all use this module; it imports none of them.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from autoloop import tracking
from autoloop.adapters import aws_call, client, error_code
from autoloop.errors import (
    AwsThrottled,
    DeploymentFailed,
    DeploymentRolledBack,
    EndpointStillUpdating,
    JobFailed,
    JobNotFound,
    JobStillRunning,
    TransientAwsError,
)
from autoloop.events import (
    TERMINAL_JOB_STATUSES,
    EndpointStateChange,
    JobStateChange,
    parse_callback_event,
)
from autoloop.jobs import JobKind, job_result
from autoloop.naming import parse_run_id
from autoloop.observability import logger, metrics

CREATE_JOB = {"processing": "create_processing_job", "training": "create_training_job",
              "transform": "create_transform_job"}
ENDPOINT_TOKEN_PREFIX = "endpoint:"
STALE_TOKEN_CODES = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
MAX_CAUSE = 32768  # SendTaskFailure's limit
#: Seconds of clock difference between Lambda and SageMaker tolerated when telling a late event
#: (from before a deployment began) from one about the deployment.
CLOCK_SLACK_SECONDS = 1.0
#: Endpoint statuses in which it is changing: no new deployment starts, and a wait goes on.
BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting", "UpdateRollbackFailed"})


class TokenStore:
    """Task tokens parked by job name until the job's state-change event arrives."""

    def __init__(self, table: str, ttl_seconds: int = 7 * 24 * 3600) -> None:
        self.table = table
        self.ttl_seconds = ttl_seconds

    def put(self, job_name: str, token: str, execution_arn: str, step: str) -> None:
        item = {
            "job_name": {"S": job_name},
            "token": {"S": token},
            "execution_arn": {"S": execution_arn},
            "step": {"S": step},
            "expires_at": {"N": str(int(time.time()) + self.ttl_seconds)},
        }
        with aws_call(f"saving the task token for {job_name}"):
            client("dynamodb").put_item(TableName=self.table, Item=item)

    def pop(self, job_name: str) -> dict[str, str] | None:
        """Remove and return the token entry; None if it was already taken (or never parked).

        The delete is the claim: of two deliveries of the same event, only one gets the item.
        """
        with aws_call(f"claiming the task token for {job_name}"):
            response = client("dynamodb").delete_item(
                TableName=self.table, Key={"job_name": {"S": job_name}}, ReturnValues="ALL_OLD"
            )
        item = response.get("Attributes")
        if not item:
            return None
        return {k: v["S"] for k, v in item.items() if "S" in v}


# ----------------------------------------------------------------------------- describing
def describe_job(kind: JobKind, name: str) -> dict[str, Any]:
    """DescribeProcessingJob / DescribeTrainingJob / DescribeTransformJob; JobNotFound if there is none."""
    sagemaker = client("sagemaker")
    with aws_call(f"describing {kind} job {name}"):
        try:
            if kind == "processing":
                return dict(sagemaker.describe_processing_job(ProcessingJobName=name))
            if kind == "transform":
                return dict(sagemaker.describe_transform_job(TransformJobName=name))
            return dict(sagemaker.describe_training_job(TrainingJobName=name))
        except ClientError as exc:
            if error_code(exc) in {"ValidationException", "ResourceNotFound"}:
                raise JobNotFound(f"{kind} job {name} does not exist.") from exc
            raise


def describe_endpoint(name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None if the endpoint does not exist."""
    with aws_call(f"describing endpoint {name}"):
        try:
            return dict(client("sagemaker").describe_endpoint(EndpointName=name))
        except ClientError as exc:
            if error_code(exc) == "ValidationException" and "not find" in str(exc).lower():
                return None
            raise


def failure_cause(result: dict[str, Any]) -> str:
    return f"{result['job_name']} {result['status']}: {result['failure_reason'] or 'no reason given'}"


# ----------------------------------------------------------------------------- jobs
def complete_job_task(token: str, kind: JobKind, description: dict[str, Any]) -> dict[str, Any]:
    """SendTaskSuccess with the job result, or SendTaskFailure with its FailureReason."""
    result = job_result(kind, description)
    metrics.add_metric(name="JobsSucceeded" if result["status"] == "Completed" else "JobsFailed",
                       unit=MetricUnit.Count, value=1)
    sfn = client("stepfunctions")
    with aws_call(f"completing the task of {result['job_name']}"):
        try:
            if result["status"] == "Completed":
                sfn.send_task_success(taskToken=token, output=json.dumps(result, default=str))
            else:
                sfn.send_task_failure(taskToken=token, error="JobFailed", cause=failure_cause(result)[:MAX_CAUSE])
        except ClientError as exc:
            if error_code(exc) in STALE_TOKEN_CODES:
                logger.info("task already closed", extra={"job_name": result["job_name"], "code": error_code(exc)})
                return {**result, "task": "already-closed"}
            raise
    return {**result, "task": "completed"}


def start_job_for_task(name: str, kind: JobKind, spec: dict[str, Any], *, task_token: str, execution: str,
                       step: str, table: str) -> dict[str, Any]:
    """Park the task token under the job's name, then create the job.

    A job that exists already (a retried launch, a resumed month, a redeployed package) is
    not created again. If it has ended, its event may be long gone, so the task is
    completed now; otherwise its event will complete it.
    """
    store = TokenStore(table)
    store.put(name, task_token, execution, step)
    with aws_call(f"creating {kind} job {name}"):
        try:
            getattr(client("sagemaker"), CREATE_JOB[kind])(**spec)
        except ClientError as exc:
            if error_code(exc) != "ResourceInUse":
                raise
            description = describe_job(kind, name)
            status = job_result(kind, description)["status"]
            logger.info("job exists already", extra={"job_name": name, "status": status})
            if status in TERMINAL_JOB_STATUSES:
                store.pop(name)
                complete_job_task(task_token, kind, description)
            return {"job_name": name, "launched": False, "status": status}
    logger.info("job launched", extra={"job_name": name, "kind": kind})
    metrics.add_metric(name="JobsLaunched", unit=MetricUnit.Count, value=1)
    return {"job_name": name, "launched": True}


def handle_job_event(change: JobStateChange, table: str) -> dict[str, Any]:
    """A job reached a state: if it has ended and a task waits for it, complete that task."""
    name = change.job_name
    if change.status not in TERMINAL_JOB_STATUSES:
        metrics.add_metric(name="CallbacksIgnored", unit=MetricUnit.Count, value=1)
        return {"job_name": name, "ignored": f"status {change.status} is not terminal"}
    store = TokenStore(table)
    entry = store.pop(name)
    if entry is None:
        logger.info("no waiting task", extra={"job_name": name})
        metrics.add_metric(name="CallbacksIgnored", unit=MetricUnit.Count, value=1)
        return {"job_name": name, "ignored": "no task is waiting (duplicate event, or not an Autoloop job)"}
    try:
        parse_run_id(name.rsplit("-", 1)[0])
        logger.set_correlation_id(name.rsplit("-", 1)[0])
    except ValueError:
        pass
    try:
        return complete_job_task(entry["token"], change.kind, describe_job(change.kind, name))
    except (AwsThrottled, TransientAwsError):
        # Put the claim back so the retried delivery of this event can complete the task.
        store.put(name, entry["token"], entry.get("execution_arn", ""), entry.get("step", ""))
        raise


def reconcile_job(kind: JobKind, name: str) -> dict[str, Any]:
    """After a timed-out wait: the job's result, or JobStillRunning / JobFailed."""
    result = job_result(kind, describe_job(kind, name))
    metrics.add_metric(name="JobsReconciled", unit=MetricUnit.Count, value=1)
    if result["status"] in {"InProgress", "Stopping"}:
        raise JobStillRunning(f"{kind} job {name} is still {result['status']}.")
    if result["status"] != "Completed":
        raise JobFailed(failure_cause(result))
    return result


# ----------------------------------------------------------------------------- endpoints
def endpoint_result(description: dict[str, Any], desired_config: str) -> dict[str, Any]:
    """Success when the endpoint is InService on the desired config; a named error otherwise."""
    status, config = description["EndpointStatus"], description.get("EndpointConfigName")
    reason = description.get("FailureReason") or "no reason given"
    if status in BUSY:
        raise EndpointStillUpdating(f"endpoint {description['EndpointName']} is still {status}.")
    if status == "InService" and config == desired_config:
        return {"endpoint_name": description["EndpointName"], "config_name": config, "status": status}
    if status == "InService":
        raise DeploymentRolledBack(
            f"endpoint {description['EndpointName']} rolled back to {config} instead of {desired_config}: {reason}"
        )
    raise DeploymentFailed(f"endpoint {description['EndpointName']} is {status}: {reason}")


class EndpointWaiters:
    """Deploy tasks waiting on one endpoint, all of them: item ``endpoint:<name>``.

    Each waiting task is one attribute of the item, named after its token
    (``task_<16 hex of sha256(token)>``), holding ``{token, execution_arn, config, parked_at}``;
    ``waiting`` (N) counts them. More than one task can wait at once (a duplicate approval's
    execution, a deployment whose wait timed out and was reconciled): parking never overwrites
    another task's token, and each is completed, failed or dropped on its own. A task is
    claimed by removing its attribute on condition that it is there, so of two deliveries of
    the same event only one completes it. The item goes when its last task does.
    """

    def __init__(self, table: str, endpoint: str, ttl_seconds: int = 7 * 24 * 3600) -> None:
        self.table = table
        self.endpoint = endpoint
        self.key = {"job_name": {"S": ENDPOINT_TOKEN_PREFIX + endpoint}}
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def attribute(token: str) -> str:
        return "task_" + hashlib.sha256(token.encode()).hexdigest()[:16]

    def park(self, token: str, execution: str, desired_config: str, parked_at: float | None = None) -> str:
        """Add a waiting task (a retried park of the same token changes nothing)."""
        name = self.attribute(token)
        entry = {"token": {"S": token}, "execution_arn": {"S": execution}, "config": {"S": desired_config},
                 "parked_at": {"N": repr(time.time() if parked_at is None else parked_at)}}
        with aws_call(f"saving the deploy task token for {self.endpoint}"):
            try:
                client("dynamodb").update_item(
                    TableName=self.table, Key=self.key,
                    UpdateExpression="SET #task = :entry, expires_at = :expires ADD waiting :one",
                    ConditionExpression="attribute_not_exists(#task)",
                    ExpressionAttributeNames={"#task": name},
                    ExpressionAttributeValues={":entry": {"M": entry}, ":one": {"N": "1"},
                                               ":expires": {"N": str(int(time.time()) + self.ttl_seconds)}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
        return name

    def waiting(self) -> dict[str, dict[str, str]]:
        """Attribute name -> entry, for every task waiting on the endpoint."""
        with aws_call(f"reading the deploy tasks waiting on {self.endpoint}"):
            item = client("dynamodb").get_item(TableName=self.table, Key=self.key, ConsistentRead=True).get("Item")
        found: dict[str, dict[str, str]] = {}
        for name, value in (item or {}).items():
            if name.startswith("task_") and "M" in value:
                found[name] = {k: str(v.get("S", v.get("N", ""))) for k, v in value["M"].items()}
        if item and "token" in item:  # parked before tasks became attributes: one task, the item itself
            found["token"] = {"token": item["token"]["S"], "execution_arn": item.get("execution_arn", {}).get("S", ""),
                              "config": item.get("step", {}).get("S", ""), "parked_at": "0"}
        return found

    def claim(self, name: str) -> bool:
        """Remove one waiting task; False if another delivery took it first. The item goes
        with its last task."""
        dynamodb = client("dynamodb")
        with aws_call(f"claiming a deploy task of {self.endpoint}"):
            if name == "token":
                try:
                    dynamodb.delete_item(TableName=self.table, Key=self.key, ConditionExpression="attribute_exists(#t)",
                                         ExpressionAttributeNames={"#t": "token"})
                    return True
                except ClientError as exc:
                    if error_code(exc) == "ConditionalCheckFailedException":
                        return False
                    raise
            try:
                dynamodb.update_item(
                    TableName=self.table, Key=self.key, UpdateExpression="REMOVE #task ADD waiting :minus_one",
                    ConditionExpression="attribute_exists(#task)", ExpressionAttributeNames={"#task": name},
                    ExpressionAttributeValues={":minus_one": {"N": "-1"}},
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
            try:
                dynamodb.delete_item(TableName=self.table, Key=self.key, ConditionExpression="waiting <= :zero",
                                     ExpressionAttributeValues={":zero": {"N": "0"}})
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":  # another task still waits
                    raise
        return True

    def restore(self, name: str, entry: dict[str, str]) -> None:
        """Put a claimed task back (its completion hit a retryable AWS error)."""
        self.park(entry["token"], entry.get("execution_arn", ""), entry.get("config", ""),
                  float(entry.get("parked_at") or 0) or None)


def park_endpoint_task(table: str, endpoint: str, token: str, execution: str, desired_config: str) -> None:
    """The deploy task waits under ``endpoint:<name>`` beside any other waiting task."""
    EndpointWaiters(table, endpoint).park(token, execution, desired_config)


def _changed_since(description: dict[str, Any], parked_at: float) -> bool:
    """Whether the endpoint changed after the task was parked (an older event, delivered
    late, describes the endpoint from before this deployment started)."""
    modified = description.get("LastModifiedTime")
    if modified is None or not parked_at:
        return True
    stamp = modified.timestamp() if isinstance(modified, datetime) else float(modified)
    return stamp >= parked_at - CLOCK_SLACK_SECONDS


def send_endpoint_outcome(token: str, endpoint: str, outcome: dict[str, Any] | Exception) -> str:
    """SendTaskSuccess with the result, or SendTaskFailure with the named error. A stale token
    (the task timed out and its reconcile took over, or the execution ended) is dropped:
    returns ``"completed"``, ``"failed"`` or ``"already-closed"``."""
    sfn = client("stepfunctions")
    with aws_call(f"completing the deployment task of {endpoint}"):
        try:
            if isinstance(outcome, Exception):
                sfn.send_task_failure(taskToken=token, error=type(outcome).__name__, cause=str(outcome)[:MAX_CAUSE])
                return "failed"
            sfn.send_task_success(taskToken=token, output=json.dumps(outcome))
            return "completed"
        except ClientError as exc:
            if error_code(exc) not in STALE_TOKEN_CODES:
                raise
            logger.info("deploy task already closed", extra={"endpoint": endpoint, "code": error_code(exc)})
            metrics.add_metric(name="StaleTokensDropped", unit=MetricUnit.Count, value=1)
            return "already-closed"


def handle_endpoint_event(change: EndpointStateChange, table: str) -> dict[str, Any]:
    """"SageMaker Endpoint State Change" -> complete every deploy task waiting on the endpoint
    that the endpoint's present state decides: InService on the task's config succeeds it,
    a rollback or a failure fails it, a change in progress leaves it waiting."""
    name = change.detail.endpoint_name
    waiters = EndpointWaiters(table, name)
    waiting = waiters.waiting()
    if not waiting:
        return {"endpoint_name": name, "ignored": "no deployment is waiting for this endpoint"}
    description = describe_endpoint(name)
    tasks: dict[str, str] = {}
    for attribute, entry in waiting.items():
        desired = entry.get("config", "")
        outcome: dict[str, Any] | Exception
        try:
            if description is None:
                raise DeploymentFailed(f"endpoint {name} no longer exists.")
            outcome = endpoint_result(description, desired)
        except EndpointStillUpdating:
            tasks[desired] = "waiting"
            continue
        except (DeploymentFailed, DeploymentRolledBack) as failure:
            if description is not None and not _changed_since(description, float(entry.get("parked_at") or 0)):
                tasks[desired] = "waiting"  # a late event from before this deployment began
                continue
            outcome = failure
        if not waiters.claim(attribute):
            continue  # another delivery of this event took it
        if isinstance(outcome, DeploymentRolledBack):
            tracking.rolled_back(name, desired, str(outcome))
        try:
            tasks[desired] = send_endpoint_outcome(entry["token"], name, outcome)
        except (AwsThrottled, TransientAwsError):
            waiters.restore(attribute, entry)  # the retried delivery completes it
            raise
    result: dict[str, Any] = {"endpoint_name": name, "tasks": tasks}
    if not tasks:
        result["ignored"] = "another delivery of this event completed the waiting tasks"
    elif set(tasks.values()) == {"waiting"}:
        result["ignored"] = "the endpoint is still changing"
    return result


def reconcile_endpoint(endpoint: str, desired_config: str) -> dict[str, Any]:
    """After a timed-out wait: the deployment's result, or a named error (still updating, failed)."""
    description = describe_endpoint(endpoint)
    if description is None:
        raise DeploymentFailed(f"endpoint {endpoint} does not exist.")
    return endpoint_result(description, desired_config)


# ----------------------------------------------------------------------------- the callback
def handle_sagemaker_event(event: Any, table: str) -> dict[str, Any]:
    """Jobs and endpoints complete their waiting tasks through the same token table."""
    change = parse_callback_event(event)
    if isinstance(change, EndpointStateChange):
        return handle_endpoint_event(change, table)
    return handle_job_event(change, table)

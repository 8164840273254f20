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

import json
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

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


def park_endpoint_task(table: str, endpoint: str, token: str, execution: str, desired_config: str) -> None:
    """The deploy task waits under ``endpoint:<name>``; the config it waits for rides along."""
    TokenStore(table).put(ENDPOINT_TOKEN_PREFIX + endpoint, token, execution, desired_config)


def handle_endpoint_event(change: EndpointStateChange, table: str) -> dict[str, Any]:
    """"SageMaker Endpoint State Change" -> complete the waiting deploy task, if any."""
    name = change.detail.endpoint_name
    store = TokenStore(table)
    entry = store.pop(ENDPOINT_TOKEN_PREFIX + name)
    if entry is None:
        return {"endpoint_name": name, "ignored": "no deployment is waiting for this endpoint"}
    description = describe_endpoint(name)
    sfn = client("stepfunctions")
    with aws_call(f"completing the deployment task of {name}"):
        try:
            if description is None:
                raise DeploymentFailed(f"endpoint {name} no longer exists.")
            result = endpoint_result(description, entry.get("step", ""))
            sfn.send_task_success(taskToken=entry["token"], output=json.dumps(result))
            return {**result, "task": "completed"}
        except EndpointStillUpdating:
            store.put(ENDPOINT_TOKEN_PREFIX + name, entry["token"], entry.get("execution_arn", ""),
                      entry.get("step", ""))
            return {"endpoint_name": name, "ignored": "the endpoint is still changing"}
        except (DeploymentFailed, DeploymentRolledBack) as failure:
            sfn.send_task_failure(taskToken=entry["token"], error=type(failure).__name__,
                                  cause=str(failure)[:MAX_CAUSE])
            return {"endpoint_name": name, "task": "failed", "error": type(failure).__name__}


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

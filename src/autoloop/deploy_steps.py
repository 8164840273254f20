"""The DeployPipeline's Lambda steps: plan, deploy (blue/green), reconcile, clean up, monitor."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from autoloop import adapters, tasks, tracking
from autoloop.adapters import aws_call, client, error_code
from autoloop.batch import schedule_name as batch_schedule_name
from autoloop.batch import schedule_request as batch_schedule_request
from autoloop.config import (
    EndpointSettings,
    ModelConfig,
    MonitorScheduleSettings,
    PlanSettings,
    StartDeploySettings,
    load_model_config,
)
from autoloop.deploy import (
    VERSIONS_SEARCH_LENGTH,
    PackageEvent,
    deployment_config,
    endpoint_config_request,
    is_serverless_config,
    model_request,
    parse_package_event,
    plan,
    rollback_alarm_requests,
    rollback_alarms,
    stale_versions,
)
from autoloop.errors import EndpointBusy, InvalidEvent, InvalidModelConfig, UnknownModel
from autoloop.events import ModelPackageStateChange, parse_event
from autoloop.lifecycle import teardown_started
from autoloop.monitoring import SCHEDULE_GROUP, schedule_name, schedule_request, scheduler_request
from autoloop.naming import RUN_ID_KEY, execution_arn
from autoloop.observability import logger, metrics
from autoloop.registry import latest_approved_package
from autoloop.state import DeployPlan as Plan
from autoloop.state import DeployState, EndpointRequest, parse
from autoloop.tasks import BUSY

MAX_EXECUTION_NAME = 80  # Step Functions' limit


def deployment_name(package: PackageEvent, changed_at: Any) -> str:
    """The DeployPipeline execution of one approval state change, named by its identity:
    ``<model>-v<version>-<approved|rejected>-<10 hex>``, the hex over the package ARN, the status
    and the change's ``LastModifiedTime``. Every copy of the change's event (EventBridge's
    at-least-once delivery, SageMaker's duplicate events) names the same execution; approving
    the same package again after a rejection is a new change, so a new execution."""
    digest = hashlib.sha256(json.dumps([package.arn, package.status, str(changed_at or "")]).encode()).hexdigest()
    suffix = f"-v{package.version}-{package.status.lower()}-{digest[:10]}"
    model = re.sub(r"[^A-Za-z0-9_-]", "-", package.model)[: MAX_EXECUTION_NAME - len(suffix)]
    return model + suffix


def start_deployment(event: Any, settings: StartDeploySettings) -> dict[str, Any]:
    """"SageMaker Model Package State Change" (Approved or Rejected) -> one DeployPipeline
    execution per state change. A duplicate event gets ExecutionAlreadyExists, which is a
    success: the change is already being (or was) deployed. The execution's input is the event."""
    package = parse_package_event(event, settings.model_package_group_prefix)
    changed_at = parse_event(ModelPackageStateChange, event).detail.last_modified
    name = deployment_name(package, changed_at)
    status = adapters.start_execution_once(settings.state_machine_arn, name, json.dumps(event),
                                           "starting the DeployPipeline")
    if status is not None:
        logger.info("duplicate approval event: the deployment exists", extra={"execution": name, "status": status})
        metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
        return {"started": False, "duplicate": True, "execution_name": name, "status": status}
    logger.info("deployment started", extra={"execution": name, "package": package.arn, "status": package.status})
    metrics.add_metric(name="DeploymentsStarted", unit=MetricUnit.Count, value=1)
    return {"started": True, "execution_name": name, "execution_arn": execution_arn(settings.state_machine_arn, name)}


def plan_deployment(event: Any, settings: PlanSettings) -> dict[str, Any]:
    """Decide what an approval or a rejection means for the model's endpoint."""
    package = parse_package_event(event, settings.model_package_group_prefix)
    if teardown_started(settings.task_token_table):
        # A late approval while (or after) the stack is deleted must not start an endpoint
        # that nothing would ever delete.
        stopped = Plan(action="none", reason=f"package v{package.version}: the stack is being deleted, "
                       "so nothing is deployed", model=package.model,
                       endpoint_name=f"{settings.stack_name}-{package.model}")
        logger.info("deployment plan", extra={"action": stopped.action, "reason": stopped.reason})
        return stopped.model_dump()
    endpoint_desc = tasks.describe_endpoint(f"{settings.stack_name}-{package.model}")
    if endpoint_desc and endpoint_desc["EndpointStatus"] in BUSY:
        raise EndpointBusy(f"endpoint {endpoint_desc['EndpointName']} is {endpoint_desc['EndpointStatus']}.")
    sagemaker = client("sagemaker")
    with aws_call(f"reading model packages of {package.group}"):
        if package.status == "Approved":
            described = dict(sagemaker.describe_model_package(ModelPackageName=package.arn))
            # Approved and then changed again: the newer event decides.
            target = described if described.get("ModelApprovalStatus") == "Approved" else None
        else:
            target = latest_approved_package(package.group)
    serving = (endpoint_desc or {}).get("EndpointConfigName")
    status = (endpoint_desc or {}).get("EndpointStatus")
    serving_serverless = None
    if serving and settings.serverless_memory_mb:
        with aws_call(f"reading endpoint config {serving}"):
            serving_serverless = is_serverless_config(sagemaker.describe_endpoint_config(EndpointConfigName=serving))
    result = plan(package, stack=settings.stack_name, serving_config=serving, endpoint_status=status, target=target,
                  serverless_memory_mb=settings.serverless_memory_mb, serving_serverless=serving_serverless,
                  security=settings.security())
    logger.info("deployment plan", extra={"action": result.action, "reason": result.reason})
    return result.model_dump()


def _tags(plan_: Any, stack: str) -> list[dict[str, str]]:
    tags = {"autoloop:model": plan_.model, "autoloop:stack": stack,
            "autoloop:model-package": plan_.package_arn or "", RUN_ID_KEY: plan_.run_id or ""}
    return [{"Key": k, "Value": v} for k, v in tags.items() if v]


def _create_ignoring_existing(what: str, call: Any, **kwargs: Any) -> None:
    """Models and configs are named by package version: one that exists is the same one."""
    with aws_call(what):
        try:
            call(**kwargs)
        except ClientError as exc:
            if "already exist" not in str(exc).lower():
                raise
            logger.info("exists already", extra={"what": what})


def deploy_endpoint(payload: Any, settings: EndpointSettings) -> dict[str, Any]:
    """Create the model and config, then create the endpoint or update it blue/green."""
    request = parse(EndpointRequest, payload, "deploy request")
    p = request.plan
    if p.action == "none" or not p.config_name or not p.model_name:
        raise InvalidEvent("the deploy step got a plan with nothing to deploy.")
    tags = _tags(p, settings.stack_name)
    # The model's own resources, which no template names: the alarms that roll back its
    # blue/green updates (before the endpoint is created or updated) and its monthly schedule.
    alarms = put_rollback_alarms(p, settings.stack_name)
    config = published_config(p.model, settings)
    schedule = put_batch_schedule(p.model, config, settings)
    logger.info("model resources put", extra={"alarms": alarms, "batch_schedule": schedule})
    sagemaker = client("sagemaker")
    _create_ignoring_existing(f"creating model {p.model_name}", sagemaker.create_model,
                              **model_request(p, settings.sagemaker_role_arn, tags, settings.security()))
    capture = f"s3://{settings.artifacts_bucket}/datacapture"
    _create_ignoring_existing(
        f"creating endpoint config {p.config_name}", sagemaker.create_endpoint_config,
        **endpoint_config_request(p, capture_uri=capture, sampling_percentage=settings.data_capture_percentage,
                                  instance_type=endpoint_instance_type(p.model, config, settings),
                                  serverless_memory_mb=p.serverless_memory_mb or None, tags=tags,
                                  security=settings.security()),
    )
    existing = tasks.describe_endpoint(p.endpoint_name)
    if existing is not None and existing["EndpointStatus"] == "InService" \
            and existing.get("EndpointConfigName") == p.config_name:
        # Already serving the target (a duplicate approval's execution, or a retried task after
        # the update went through): no second deployment, and no event will come for this task.
        result = tasks.endpoint_result(existing, p.config_name)
        task = None
        if request.task_token:
            waiters = tasks.EndpointWaiters(settings.task_token_table, p.endpoint_name)
            waiters.claim(waiters.attribute(request.task_token))  # parked by an earlier attempt of this task
            task = tasks.send_endpoint_outcome(request.task_token, p.endpoint_name, result)
        metrics.add_metric(name="DeploymentsAlreadyServing", unit=MetricUnit.Count, value=1)
        logger.info("already serving", extra={"endpoint": p.endpoint_name, "config": p.config_name, "task": task})
        return {"endpoint_name": p.endpoint_name, "config_name": p.config_name, "action": "none", "task": task,
                "alarms": alarms, "batch_schedule": schedule}
    if existing is not None and existing["EndpointStatus"] in BUSY:
        raise EndpointBusy(f"endpoint {p.endpoint_name} is {existing['EndpointStatus']}.")
    if request.task_token:
        # Parked before the request, so the state-change event it causes always finds the task.
        tasks.park_endpoint_task(settings.task_token_table, p.endpoint_name, request.task_token, request.execution,
                                 p.config_name)
    with aws_call(f"deploying {p.config_name} to endpoint {p.endpoint_name}"):
        if existing is None:
            sagemaker.create_endpoint(EndpointName=p.endpoint_name, EndpointConfigName=p.config_name, Tags=tags)
            action = "create"
        else:
            sagemaker.update_endpoint(
                EndpointName=p.endpoint_name, EndpointConfigName=p.config_name,
                DeploymentConfig=deployment_config(rollback_alarms(p.endpoint_name), settings.bake_seconds,
                                                   settings.termination_wait_seconds),
            )
            action = "update"
    metrics.add_metric(name="Deployments", unit=MetricUnit.Count, value=1)
    logger.info("deployment started", extra={"endpoint": p.endpoint_name, "config": p.config_name, "action": action})
    tracking.deployment_started(p.model, p.run_id, p.endpoint_name, p.config_name, action)
    return {"endpoint_name": p.endpoint_name, "config_name": p.config_name, "action": action, "alarms": alarms,
            "batch_schedule": schedule}


def reconcile_endpoint(payload: Any) -> dict[str, Any]:
    """After a timed-out wait: the deployment's result, or a named error."""
    request = parse(EndpointRequest, payload, "reconcile request")
    return tasks.reconcile_endpoint(request.plan.endpoint_name, request.plan.config_name or "")


def cleanup_endpoint(payload: Any) -> dict[str, Any]:
    """Delete this endpoint's configs and models other than the one now serving."""
    request = parse(EndpointRequest, payload, "cleanup request")
    p = request.plan
    keep = p.config_name or ""
    sagemaker = client("sagemaker")
    deleted: dict[str, list[str]] = {"configs": [], "models": []}
    with aws_call(f"cleaning up old versions of {p.endpoint_name}"):
        search = p.endpoint_name[:VERSIONS_SEARCH_LENGTH]  # a long endpoint name is cut in its versions
        configs = [c["EndpointConfigName"] for page in sagemaker.get_paginator("list_endpoint_configs").paginate(
            NameContains=search) for c in page["EndpointConfigs"]]
        for name in stale_versions(configs, p.endpoint_name, keep):
            sagemaker.delete_endpoint_config(EndpointConfigName=name)
            deleted["configs"].append(name)
        models = [m["ModelName"] for page in sagemaker.get_paginator("list_models").paginate(NameContains=search)
                  for m in page["Models"]]
        for name in stale_versions(models, p.endpoint_name, keep):
            sagemaker.delete_model(ModelName=name)
            deleted["models"].append(name)
    logger.info("cleaned up", extra=deleted)
    tracking.deployed(p.model, p.run_id, p.endpoint_name)  # cleanup follows a deployment that went through
    return deleted


def schedule_monitoring(payload: Any, settings: MonitorScheduleSettings) -> dict[str, Any]:
    """Create or update the endpoint's monitoring schedule: a Scheduler schedule that starts the
    MonitoringPipeline (autoloop backend), or a Model Monitor schedule with the calibrated constraints."""
    state = parse(DeployState, payload, "deployment state")
    if settings.monitoring_backend == "autoloop":
        return _schedule_own_monitoring(state, settings)
    return _schedule_model_monitor(state, settings)


def _schedule_model_monitor(state: DeployState, settings: MonitorScheduleSettings) -> dict[str, Any]:
    endpoint = state.plan.endpoint_name
    statistics = state.job("baseline").outputs["monitoring_output"].rstrip("/") + "/statistics.json"
    constraints = state.job("calibrate").outputs["calibrated"].rstrip("/") + "/constraints.json"
    request = schedule_request(
        endpoint=endpoint, artifacts_bucket=settings.artifacts_bucket, role_arn=settings.sagemaker_role_arn,
        instance_type=settings.processing_instance_type, constraints_uri=constraints, statistics_uri=statistics,
        settings=settings.monitoring(), max_runtime_seconds=settings.job_max_runtime_seconds,
        tags=[{"Key": "autoloop:stack", "Value": settings.stack_name}] if settings.stack_name else [],
        security=settings.security(),
    )
    sagemaker = client("sagemaker")
    name = schedule_name(endpoint)
    with aws_call(f"scheduling monitoring {name}"):
        try:
            sagemaker.describe_monitoring_schedule(MonitoringScheduleName=name)
            exists = True
        except ClientError as exc:
            if error_code(exc) not in {"ResourceNotFound", "ValidationException"}:
                raise
            exists = False
        if exists:
            sagemaker.update_monitoring_schedule(
                MonitoringScheduleName=name, MonitoringScheduleConfig=request["MonitoringScheduleConfig"]
            )
        else:
            sagemaker.create_monitoring_schedule(**request)
    logger.info("monitoring scheduled", extra={"schedule": name, "constraints": constraints})
    return {"schedule_name": name, "constraints_uri": constraints, "statistics_uri": statistics,
            "updated": exists}


def _schedule_own_monitoring(state: DeployState, settings: MonitorScheduleSettings) -> dict[str, Any]:
    baseline = state.job("baseline").outputs["monitoring_output"].rstrip("/")
    request = scheduler_request(
        endpoint=state.plan.endpoint_name, model=state.plan.model, target_arn=settings.monitoring_pipeline_arn,
        role_arn=settings.scheduler_role_arn, statistics_uri=f"{baseline}/statistics.json",
        constraints_uri=f"{baseline}/constraints.json", kms_key_arn=settings.kms_key_arn,
    )
    name = request["Name"]
    exists = put_schedule(request, f"scheduling monitoring {name}")
    logger.info("monitoring scheduled", extra={"schedule": name, "baseline": baseline})
    return {"schedule_name": name, "backend": "autoloop", "constraints_uri": f"{baseline}/constraints.json",
            "statistics_uri": f"{baseline}/statistics.json", "updated": exists}


def put_schedule(request: dict[str, Any], what: str) -> bool:
    """Create or update an EventBridge Scheduler schedule (at-least-once safe); True if it existed."""
    scheduler = client("scheduler")
    name = request["Name"]
    with aws_call(what):
        try:
            scheduler.get_schedule(Name=name, GroupName=request["GroupName"])
            exists = True
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            exists = False
        if exists:
            scheduler.update_schedule(**request)
        else:
            try:
                scheduler.create_schedule(**request)
            except ClientError as exc:  # a concurrent deploy created it first: make it ours
                if error_code(exc) != "ConflictException":
                    raise
                scheduler.update_schedule(**request)
                exists = True
    return exists


# ----------------------------------------------------------------------------- per-model resources
def put_rollback_alarms(p: Plan, stack: str) -> list[str]:
    """Put the endpoint's rollback alarms (:func:`autoloop.deploy.rollback_alarm_requests`):
    PutMetricAlarm creates one that is missing and rewrites one that exists (keeping its state),
    so a retried or duplicated deploy step is harmless."""
    cloudwatch = client("cloudwatch")
    names = []
    for request in rollback_alarm_requests(p.endpoint_name, stack=stack, model=p.model):
        with aws_call(f"putting rollback alarm {request['AlarmName']}"):
            cloudwatch.put_metric_alarm(**request)
        names.append(request["AlarmName"])
    return names


def published_config(model: str, settings: EndpointSettings) -> ModelConfig | UnknownModel | InvalidModelConfig:
    """The model's published config, read once per deployment, or why it cannot be read: neither
    the schedule nor the instance type it sets may stop a deployment or a rollback."""
    try:
        return load_model_config(settings.artifacts_bucket, model)
    except (UnknownModel, InvalidModelConfig) as exc:
        return exc


def endpoint_instance_type(model: str, config: ModelConfig | Exception, settings: EndpointSettings) -> str:
    """The model config's ``instance_types.endpoint``, else the stack's EndpointInstanceType. The
    endpoint config is named by package version, so a change takes effect with the next version
    deployed. A config that cannot be read deploys on the stack's type (and says so)."""
    if isinstance(config, Exception):
        logger.warning("endpoint on the stack's instance type", extra={"model": model, "reason": str(config)})
        return settings.endpoint_instance_type
    return config.instance_types.endpoint or settings.endpoint_instance_type


def put_batch_schedule(model: str, config: ModelConfig | Exception, settings: EndpointSettings) -> dict[str, Any]:
    """The model's monthly batch schedule, as its published config says: created or updated when
    ``batch.schedule`` is on (the default), deleted when it is off. A config that cannot be read
    leaves the schedule as it is (and says so): it must not stop a deployment or a rollback."""
    name = batch_schedule_name(settings.stack_name, model)
    if isinstance(config, Exception):
        logger.warning("batch schedule left as it is", extra={"schedule": name, "reason": str(config)})
        return {"schedule_name": name, "action": "kept", "reason": str(config)}
    wanted = config.batch.schedule
    if not wanted:
        with aws_call(f"deleting batch schedule {name}"):
            try:
                client("scheduler").delete_schedule(Name=name, GroupName=SCHEDULE_GROUP)
                action = "deleted"
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                action = "none"
        return {"schedule_name": name, "action": action}
    request = batch_schedule_request(
        stack=settings.stack_name, model=model, target_arn=settings.batch_transform_arn,
        role_arn=settings.batch_scheduler_role_arn, expression=settings.batch_schedule,
        state=settings.batch_schedule_state, kms_key_arn=settings.kms_key_arn,
    )
    existed = put_schedule(request, f"scheduling the monthly batch transform {name}")
    return {"schedule_name": name, "action": "updated" if existed else "created"}

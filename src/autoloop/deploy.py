"""Deployment planning and SageMaker endpoint requests, as pure functions.

One endpoint per model, named ``<stack>-<model>``. Each deployed package gets a model and
an endpoint config named after the package version, so the serving package can be read
from the endpoint's config name, and a rollback to an older package is a redeploy of it.

Serverless (``ServerlessMemoryMB`` > 0): SageMaker's serverless inference supports neither
network isolation, a VPC, data capture (so no Model Monitor schedule), nor a KMS key for
volumes, and an endpoint that serves from instances cannot be updated into a serverless one.
So a serverless plan's model has no ``EnableNetworkIsolation``/``VpcConfig``, its endpoint
config no ``DataCaptureConfig``/``KmsKeyId``, the plan says ``data_capture: false`` (the
DeployPipeline then skips the monitoring schedule and says so), and a serverless plan for an
instance endpoint, or with ``SubnetIds`` set, is refused (:class:`ServerlessNotPossible`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from autoloop.errors import InvalidEvent, ServerlessNotPossible
from autoloop.events import ModelPackageStateChange, parse_event
from autoloop.jobs import DEFAULT_SECURITY, JobSecurity
from autoloop.naming import STACK_TAG, tag_value
from autoloop.registry import deployable
from autoloop.state import DeployPlan as Plan

MAX_NAME = 63
_VERSIONED = re.compile(r"-v(?P<version>\d+)-[0-9a-f]{6}$")

Action = Literal["create", "update", "none"]


def endpoint_name(stack: str, model: str) -> str:
    name = f"{stack}-{model}"
    if len(name) > MAX_NAME:
        raise ValueError(f"endpoint name {name!r} is longer than {MAX_NAME} characters; use a shorter stack name")
    return name


def rollback_alarms(endpoint: str) -> list[str]:
    """The CloudWatch alarms that roll back a blue/green update (:func:`rollback_alarm_requests`)."""
    return [request["AlarmName"] for request in rollback_alarm_requests(endpoint, stack="", model="")]


#: Each rollback alarm: (name suffix, what it watches, metric, statistic, periods, threshold,
#: comparison). 5xx: any server error in a minute; model errors: 5 or more 4xx (ModelError)
#: in a minute; latency: p99 ModelLatency (microseconds) above 500 ms for two minutes.
ROLLBACK_ALARMS: tuple[tuple[str, str, str, str, int, float, str], ...] = (
    ("-5xx", "Server errors", "Invocation5XXErrors", "Sum", 1, 1.0, "GreaterThanOrEqualToThreshold"),
    ("-model-errors", "Model errors (4xx, ModelError)", "Invocation4XXErrors", "Sum", 1, 5.0,
     "GreaterThanOrEqualToThreshold"),
    ("-latency", "Model latency above 500 ms (p99)", "ModelLatency", "p99", 2, 500000.0, "GreaterThanThreshold"),
)


def rollback_alarm_requests(endpoint: str, *, stack: str, model: str) -> list[dict[str, Any]]:
    """The PutMetricAlarm requests of the endpoint's rollback alarms (``<endpoint>-5xx``,
    ``-model-errors``, ``-latency``), which the deploy step puts before every create or update,
    so every model's blue/green update rolls back on them. Tagged with the stack (when given)
    for the teardown; CloudWatch ignores the tags of an alarm that exists."""
    tags = [{"Key": k, "Value": tag_value(v)} for k, v in ((STACK_TAG, stack), ("autoloop:model", model)) if v]
    requests = []
    for suffix, what, metric, statistic, periods, threshold, comparison in ROLLBACK_ALARMS:
        request: dict[str, Any] = {
            "AlarmName": f"{endpoint}{suffix}",
            "AlarmDescription": f"{what} on endpoint {endpoint} (rolls back a blue/green update)",
            "Namespace": "AWS/SageMaker",
            "MetricName": metric,
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
            "Period": 60,
            "EvaluationPeriods": periods,
            "Threshold": threshold,
            "ComparisonOperator": comparison,
            "TreatMissingData": "notBreaching",
            ("ExtendedStatistic" if statistic.startswith("p") else "Statistic"): statistic,
        }
        if tags:
            request["Tags"] = tags
        requests.append(request)
    return requests


def versioned_name(endpoint: str, package_arn: str, version: int) -> str:
    """``<endpoint>-v<version>-<hash>``: names the model and endpoint config of one package."""
    digest = hashlib.sha256(package_arn.encode()).hexdigest()[:6]
    suffix = f"-v{version}-{digest}"
    return endpoint[: MAX_NAME - len(suffix)] + suffix


def version_of(config_name: str) -> int | None:
    match = _VERSIONED.search(config_name)
    return int(match.group("version")) if match else None


@dataclass(frozen=True)
class PackageEvent:
    group: str
    model: str
    arn: str
    version: int
    status: str


def parse_package_event(event: Any, group_prefix: str) -> PackageEvent:
    """A "SageMaker Model Package State Change" of one of this stack's groups."""
    detail = parse_event(ModelPackageStateChange, event).detail
    group, arn = detail.group, detail.arn
    if not group.startswith(f"{group_prefix}-"):
        raise InvalidEvent(
            f"model package group {group!r} does not belong to this stack ({group_prefix}-<model>).",
            "Approve packages in this stack's groups only; other groups are not deployed by Autoloop.",
        )
    try:
        number = int(detail.version if detail.version is not None else arn.rsplit("/", 1)[-1])
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"cannot tell the version of model package {arn}.") from exc
    return PackageEvent(group=group, model=group[len(group_prefix) + 1 :], arn=arn, version=number,
                        status=detail.status)


def is_serverless_config(described: Mapping[str, Any]) -> bool:
    """A DescribeEndpointConfig answer whose variants are serverless."""
    return any("ServerlessConfig" in v for v in described.get("ProductionVariants") or [])


def plan(event: PackageEvent, *, stack: str, serving_config: str | None, endpoint_status: str | None,
         target: Mapping[str, Any] | None, serverless_memory_mb: int = 0, serving_serverless: bool | None = None,
         security: JobSecurity = DEFAULT_SECURITY) -> Plan:
    """What to do about an approval or a rejection.

    ``target`` is the package to serve: the approved one, or for a rejection of the
    serving package, the latest Approved one (None if there is none). ``serving_config``
    is the endpoint's current config (None if there is no endpoint), ``serving_serverless``
    whether that config is serverless. ``serverless_memory_mb`` > 0 asks for serverless.
    """
    endpoint = endpoint_name(stack, event.model)
    serving = version_of(serving_config) if serving_config else None

    def nothing(reason: str) -> Plan:
        return Plan(action="none", reason=reason, model=event.model, endpoint_name=endpoint,
                    previous_config=serving_config)

    if event.status not in {"Approved", "Rejected"}:
        return nothing(f"package v{event.version} is {event.status}; only Approved packages deploy")
    if event.status == "Rejected" and serving != event.version:
        return nothing(f"package v{event.version} was rejected but is not serving")
    if event.status == "Approved" and serving is not None and serving > event.version:
        return nothing(f"package v{event.version} was approved, but the newer v{serving} is serving")
    if target is None:
        return nothing(f"package v{event.version} was rejected and no Approved package is left; "
                       "the endpoint keeps serving it until one is approved")
    ready = deployable(target)
    package = ready.package
    arn, version = package.arn, package.version
    if serving == version:
        return nothing(f"package v{version} is already serving")
    name = versioned_name(endpoint, arn, version)
    action: Action = "create" if serving_config is None and endpoint_status is None else "update"
    if serverless_memory_mb:
        _check_serverless(endpoint, action, serving_config, serving_serverless, security)
    why = ("rollback after a rejection" if event.status == "Rejected" else "approved") + f": package v{version}"
    return Plan(action=action, reason=why, model=event.model, endpoint_name=endpoint, package_arn=arn,
                package_version=version, run_id=ready.run_id, model_name=name, config_name=name,
                previous_config=serving_config, image=package.image, model_data_url=package.model_data_url,
                environment=dict(package.environment), metric=ready.metric,
                serverless_memory_mb=serverless_memory_mb, data_capture=not serverless_memory_mb)


def _check_serverless(endpoint: str, action: Action, serving_config: str | None, serving_serverless: bool | None,
                      security: JobSecurity) -> None:
    """Refuse what serverless inference cannot do, before anything is created."""
    if security.subnet_ids:
        raise ServerlessNotPossible(
            "ServerlessMemoryMB and SubnetIds are both set, but serverless endpoints cannot run in a VPC.",
            "Set ServerlessMemoryMB=0 to serve from instances in the VPC, or SubnetIds='' to serve serverless.",
        )
    if action == "update" and serving_serverless is False:
        raise ServerlessNotPossible(
            f"endpoint {endpoint} serves from instances ({serving_config}); SageMaker cannot update an "
            "instance endpoint into a serverless one.",
            f"Set ServerlessMemoryMB=0 to keep it on instances, or delete the endpoint (its monitoring schedule "
            f"{endpoint}-dq first) and approve the package again: the next deployment creates it serverless.",
        )


def model_request(plan_: Plan, role_arn: str, tags: Sequence[Mapping[str, str]],
                  security: JobSecurity = DEFAULT_SECURITY) -> dict[str, Any]:
    """Network isolated, and in the VPC when one is configured, unless the plan is serverless
    (serverless inference supports neither). CreateModel takes no KMS key: the endpoint
    config's key encrypts the serving volumes."""
    network: dict[str, Any] = {} if plan_.serverless_memory_mb else {"EnableNetworkIsolation": True, **security.vpc()}
    return {
        "ModelName": plan_.model_name,
        "ExecutionRoleArn": role_arn,
        "PrimaryContainer": {"Image": plan_.image, "ModelDataUrl": plan_.model_data_url,
                             "Environment": dict(plan_.environment or {})},
        **network,
        "Tags": list(tags),
    }


def endpoint_config_request(plan_: Plan, *, capture_uri: str, sampling_percentage: int, instance_type: str,
                            serverless_memory_mb: int | None, tags: Sequence[Mapping[str, str]],
                            security: JobSecurity = DEFAULT_SECURITY) -> dict[str, Any]:
    """Instances: data capture on, and with a KMS key, it encrypts the captured data and the
    instances' storage volumes. Serverless: neither data capture nor ``KmsKeyId`` (serverless
    inference supports neither)."""
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": plan_.model_name, "InitialVariantWeight": 1.0}
    if serverless_memory_mb:
        variant["ServerlessConfig"] = {"MemorySizeInMB": serverless_memory_mb, "MaxConcurrency": 5}
        return {"EndpointConfigName": plan_.config_name, "ProductionVariants": [variant], "Tags": list(tags)}
    variant.update({"InstanceType": instance_type, "InitialInstanceCount": 1})
    return {
        "EndpointConfigName": plan_.config_name,
        "ProductionVariants": [variant],
        "DataCaptureConfig": {
            "EnableCapture": True,
            "InitialSamplingPercentage": sampling_percentage,
            "DestinationS3Uri": capture_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
            **security.key(),
        },
        **security.key(),
        "Tags": list(tags),
    }


def deployment_config(alarms: Sequence[str], bake_seconds: int, termination_wait_seconds: int) -> dict[str, Any]:
    """Blue/green, all at once after the green fleet is healthy, baked under the alarms."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": bake_seconds},
            "TerminationWaitInSeconds": termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": max(600, 2 * (bake_seconds + termination_wait_seconds) + 600),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]},
    }


#: The part of an endpoint's name that every :func:`versioned_name` of it keeps (versions of up
#: to 7 digits): what a listing searches for; :func:`is_version_of` then tells which are its own.
VERSIONS_SEARCH_LENGTH = MAX_NAME - len("-v9999999-abcdef")


def is_version_of(name: str, endpoint: str) -> bool:
    """Whether ``name`` is a :func:`versioned_name` of ``endpoint``: exactly the endpoint's name
    cut as versioned_name cuts it, then the suffix. Another model's endpoint whose name starts
    with this one's (``<stack>-churn2`` beside ``<stack>-churn``) is not."""
    match = _VERSIONED.search(name)
    if match is None:
        return False
    return name[: match.start()] == endpoint[: MAX_NAME - (len(name) - match.start())]


def stale_versions(names: Sequence[str], endpoint: str, keep: str) -> list[str]:
    """This endpoint's versioned models or configs other than ``keep``."""
    return sorted(n for n in names if n != keep and is_version_of(n, endpoint))


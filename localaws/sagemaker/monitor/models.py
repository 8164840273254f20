"""Model Monitor's backend on the local AWS: monitoring schedules, their executions, and the clock.

The state lives on moto's ``SageMakerModelBackend`` (one :class:`_State` per backend, dropped
with it on reset). :data:`BACKEND_METHODS` are the monitoring-schedule methods moto's backend
lacks (``create_``, ``update_``, ``describe_``, ``delete_``, ``start_``, ``stop_monitoring_schedule``,
``list_monitoring_schedules``, ``list_monitoring_executions``), which
:mod:`localaws.sagemaker.monitor.service` adds to it; the wire format is in
:mod:`localaws.sagemaker.monitor.responses`. :func:`run_monitoring_now` is the clock, and
:func:`after_analyzer_run` the analyzer image's hook that publishes its metrics.

An execution, as on AWS
-----------------------
The processing job is named ``model-monitoring-<yyyymmddHHMM>-<8 hex>``. Its inputs are
every ``<DataCapture.DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh`` folder whose hour
overlaps the window (each to ``<EndpointInput.LocalPath>/<endpoint>/<variant>/yyyy/mm/dd/hh``)
plus the baseline constraints and statistics (to ``/opt/ml/processing/baseline/constraints``
and ``.../stats``). The environment is the BYOC contract: ``dataset_format``
(``sagemakerCaptureJson``), ``dataset_source``, ``output_path``, ``baseline_*``,
``publish_cloudwatch_metrics`` (``Enabled`` unless the definition says otherwise),
``sagemaker_endpoint_name``, ``sagemaker_monitoring_schedule_name``, ``start_time``,
``end_time``, plus the definition's own ``Environment``. Reports go to
``<MonitoringOutput.S3Uri>/<endpoint>/<schedule>/yyyy/mm/dd/hh/`` (hour of the window end =
the execution's ``ScheduledTime``): ``constraint_violations.json`` and ``statistics.json``.

After the analyzer succeeds and before the job is marked Completed (so before its
state-change event), the metric records it wrote are published with ``PutMetricData`` to
``aws/sagemaker/Endpoints/data-metrics`` (dimensions ``Endpoint`` and ``MonitoringSchedule``):
``feature_baseline_drift_<f>``, ``feature_non_null_<f>`` and ``feature_data_<f>``.

``ListMonitoringExecutions`` derives each execution's status from its processing job at the
time of the call: ``InProgress``, ``Completed``, ``CompletedWithViolations`` (the job
Completed and its ``ExitMessage`` starts with it; ProcessingJobStatus itself has no such
value), ``Failed`` (with the job's ``FailureReason``), ``Stopping`` or ``Stopped``. An
execution that could not start a job (no such endpoint, no data capture) is ``Failed`` with
the reason and no ``ProcessingJobArn``.

Events
------
AWS documents no EventBridge event for a monitoring *execution* or its violations. The
EventBridge reference lists "SageMaker Monitoring Schedule State Change" among SageMaker's
events but gives no sample or detail schema (the SageMaker guide's EventBridge page has no
section for it), and it is about the schedule's own status (Pending/Scheduled/Stopped/Failed).
What reacts to a finished execution is therefore the "SageMaker Processing Job State Change"
event of its processing job (the runner emits it; the job name starts with
``model-monitoring-``, the image is the analyzer and ``Environment`` names the schedule),
followed by ``ListMonitoringExecutions`` / ``DescribeProcessingJob`` and the
``constraint_violations.json`` report in S3 (or a CloudWatch alarm on the drift metrics).
Local mode emits nothing else.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"
#: the analyzer image's stand-in: Autoloop's own monitoring script in its environment-variable mode
ANALYZER_SCRIPT = Path(__file__).resolve().parents[3] / "ml" / "monitor.py"
ENDPOINT_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
BATCH_NAMESPACE = "aws/sagemaker/ModelMonitoring/data-metrics"
CAPTURE_FORMAT = {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}
DEFAULT_ENDPOINT_LOCAL_PATH = "/opt/ml/processing/input/endpoint"
DEFAULT_OUTPUT_LOCAL_PATH = "/opt/ml/processing/output"
BASELINE_CONSTRAINTS_DIR = "/opt/ml/processing/baseline/constraints"
BASELINE_STATISTICS_DIR = "/opt/ml/processing/baseline/stats"
DEFAULT_MAX_RUNTIME = 3600
SUPPORTED_TYPE = "DataQuality"
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_SCHEDULE_EXPRESSION = re.compile(r"^(cron\(.+\)|NOW)$")
_OFFSET = re.compile(r"^(?P<sign>[-+])?PT(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?$")

_LOCK = threading.RLock()


class MonitoringError(Exception):
    """A monitoring execution could not start (the reason is also recorded as Failed)."""


# --- state kept on moto's SageMaker backend ----------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Schedule:
    name: str
    arn: str
    config: dict[str, Any]
    endpoint_name: str | None
    definition_name: str | None
    tags: list[dict[str, str]]
    status: str = "Scheduled"
    failure_reason: str | None = None
    created: dt.datetime = field(default_factory=_utcnow)
    modified: dt.datetime = field(default_factory=_utcnow)


@dataclass
class _Execution:
    schedule_name: str
    scheduled_time: dt.datetime
    endpoint_name: str | None
    definition_name: str | None
    job_name: str | None
    created: dt.datetime = field(default_factory=_utcnow)
    failure_reason: str | None = None  # set when no job could be started
    metrics_published: int = 0


@dataclass
class _State:
    schedules: dict[str, _Schedule] = field(default_factory=dict)
    executions: list[_Execution] = field(default_factory=list)


def _state(backend: Any) -> _State:
    # moto's reset re-runs __init__ on a cleared __dict__, which drops this state too
    with _LOCK:
        state = backend.__dict__.get("_local_model_monitor")
        if state is None:
            state = _State()
            backend.__dict__["_local_model_monitor"] = state
        return state  # type: ignore[no-any-return]


def _validation(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message=message)


def _not_found(message: str) -> Exception:
    from moto.sagemaker.exceptions import ResourceNotFound

    return ResourceNotFound(message)


# --- job definitions ----------------------------------------------------------------------------


@dataclass
class _Definition:
    """A data-quality monitoring job definition, from either API shape."""

    name: str | None
    image: str
    entrypoint: list[str]
    arguments: list[str]
    environment: dict[str, str]
    constraints_uri: str | None
    statistics_uri: str | None
    baselining_job: str | None
    endpoint_input: dict[str, Any]
    outputs: list[dict[str, Any]]
    cluster: dict[str, Any]
    role_arn: str
    stopping: dict[str, Any]
    network: dict[str, Any]
    preprocessor: str | None
    postprocessor: str | None


def _from_named(job_def: Any) -> _Definition:
    app = job_def.data_quality_app_specification or {}
    baseline = job_def.data_quality_baseline_config or {}
    job_input = job_def.data_quality_job_input or {}
    if job_input.get("BatchTransformInput"):
        raise _validation("BatchTransformInput monitoring is not supported in local mode (EndpointInput only)")
    env = dict(job_def.environment or {})
    env.update(app.get("Environment") or {})
    return _Definition(
        name=job_def.job_definition_name,
        image=str(app.get("ImageUri") or ""),
        entrypoint=list(app.get("ContainerEntrypoint") or []),
        arguments=list(app.get("ContainerArguments") or []),
        environment={str(k): str(v) for k, v in env.items()},
        constraints_uri=(baseline.get("ConstraintsResource") or {}).get("S3Uri"),
        statistics_uri=(baseline.get("StatisticsResource") or {}).get("S3Uri"),
        baselining_job=baseline.get("BaseliningJobName"),
        endpoint_input=dict(job_input.get("EndpointInput") or {}),
        outputs=list((job_def.data_quality_job_output_config or {}).get("MonitoringOutputs") or []),
        cluster=dict((job_def.job_resources or {}).get("ClusterConfig") or {}),
        role_arn=str(job_def.role_arn or ""),
        stopping=dict(job_def.stopping_condition or {}),
        network=dict(job_def.network_config or {}),
        preprocessor=app.get("RecordPreprocessorSourceUri"),
        postprocessor=app.get("PostAnalyticsProcessorSourceUri"),
    )


def _from_inline(definition: dict[str, Any]) -> _Definition:
    app = definition.get("MonitoringAppSpecification") or {}
    baseline = definition.get("BaselineConfig") or {}
    inputs = definition.get("MonitoringInputs") or []
    if len(inputs) != 1 or not (inputs[0] or {}).get("EndpointInput"):
        raise _validation("MonitoringInputs must hold one EndpointInput in local mode (no BatchTransformInput)")
    return _Definition(
        name=None,
        image=str(app.get("ImageUri") or ""),
        entrypoint=list(app.get("ContainerEntrypoint") or []),
        arguments=list(app.get("ContainerArguments") or []),
        environment={str(k): str(v) for k, v in (definition.get("Environment") or {}).items()},
        constraints_uri=(baseline.get("ConstraintsResource") or {}).get("S3Uri"),
        statistics_uri=(baseline.get("StatisticsResource") or {}).get("S3Uri"),
        baselining_job=baseline.get("BaseliningJobName"),
        endpoint_input=dict(inputs[0]["EndpointInput"]),
        outputs=list((definition.get("MonitoringOutputConfig") or {}).get("MonitoringOutputs") or []),
        cluster=dict((definition.get("MonitoringResources") or {}).get("ClusterConfig") or {}),
        role_arn=str(definition.get("RoleArn") or ""),
        stopping=dict(definition.get("StoppingCondition") or {}),
        network=dict(definition.get("NetworkConfig") or {}),
        preprocessor=app.get("RecordPreprocessorSourceUri"),
        postprocessor=app.get("PostAnalyticsProcessorSourceUri"),
    )


def _definition(backend: Any, config: dict[str, Any]) -> _Definition:
    name = config.get("MonitoringJobDefinitionName")
    inline = config.get("MonitoringJobDefinition")
    if bool(name) == bool(inline):
        raise _validation(
            "MonitoringScheduleConfig needs exactly one of MonitoringJobDefinitionName and MonitoringJobDefinition"
        )
    if inline:
        return _from_inline(inline)
    job_def = backend.data_quality_job_definitions.get(name)
    if job_def is None:
        raise _validation(f"Could not find data quality job definition {name!r} (local mode supports DataQuality only)")
    return _from_named(job_def)


# --- moto backend methods -----------------------------------------------------------------------


def _b_create(
    self: Any,
    monitoring_schedule_name: str,
    monitoring_schedule_config: dict[str, Any],
    tags: list[dict[str, str]] | None = None,
) -> str:
    from moto.sagemaker.exceptions import ResourceInUseException
    from moto.sagemaker.utils import arn_formatter

    name = monitoring_schedule_name
    if not name or not _NAME.match(name):
        raise _validation(f"Invalid MonitoringScheduleName {name!r}: must match [a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}")
    config = copy.deepcopy(monitoring_schedule_config or {})
    monitoring_type = config.get("MonitoringType") or SUPPORTED_TYPE
    if monitoring_type != SUPPORTED_TYPE:
        raise _validation(
            f"MonitoringType {monitoring_type!r} is not supported in local mode: only {SUPPORTED_TYPE!r} "
            "monitoring schedules run locally"
        )
    config["MonitoringType"] = monitoring_type
    network = (config.get("MonitoringJobDefinition") or {}).get("NetworkConfig")
    if isinstance(network, dict):  # DescribeMonitoringSchedule returns both flags (the SDK reads them)
        network.setdefault("EnableInterContainerTrafficEncryption", False)
        network.setdefault("EnableNetworkIsolation", False)
    expression = (config.get("ScheduleConfig") or {}).get("ScheduleExpression")
    if expression is not None and not _SCHEDULE_EXPRESSION.match(str(expression)):
        raise _validation(f"Invalid ScheduleExpression {expression!r}: use cron(...) or NOW")
    definition = _definition(self, config)
    if definition.preprocessor or definition.postprocessor:
        raise _validation(
            "RecordPreprocessorSourceUri / PostAnalyticsProcessorSourceUri are not supported in local mode"
        )
    endpoint = definition.endpoint_input.get("EndpointName")
    if not endpoint:
        raise _validation("EndpointInput.EndpointName is required")
    if endpoint not in self.endpoints:
        raise _validation(f'Could not find endpoint "{endpoint}".')
    with _LOCK:
        state = _state(self)
        if name in state.schedules:
            raise ResourceInUseException(
                f"Monitoring Schedule {arn_formatter('monitoring-schedule', name, self.account_id, self.region_name)} "
                "already exists"
            )
        schedule = _Schedule(
            name=name,
            arn=arn_formatter("monitoring-schedule", name, self.account_id, self.region_name),
            config=config,
            endpoint_name=endpoint,
            definition_name=definition.name,
            tags=list(tags or []),
        )
        state.schedules[name] = schedule
    return schedule.arn


def _b_update(self: Any, monitoring_schedule_name: str, monitoring_schedule_config: dict[str, Any]) -> str:
    """UpdateMonitoringSchedule: the same validation as create; the schedule keeps its
    ARN, tags, creation time and execution history."""
    with _LOCK:
        state = _state(self)
        old = _get_schedule(self, monitoring_schedule_name)
        del state.schedules[monitoring_schedule_name]
    try:
        arn = _b_create(self, monitoring_schedule_name, monitoring_schedule_config, old.tags)
    except Exception:
        with _LOCK:
            _state(self).schedules[monitoring_schedule_name] = old
        raise
    with _LOCK:
        new = _state(self).schedules[monitoring_schedule_name]
        new.created, new.status = old.created, old.status
    return str(arn)


def schedule_for_arn(backend: Any, arn: str) -> _Schedule | None:
    """The schedule an ARN names (``...:monitoring-schedule/<name>``), or None for another
    kind of resource; raises moto's ``ValidationError`` for an unknown schedule."""
    kind, _, name = arn.rsplit(":", maxsplit=1)[-1].partition("/")
    if kind != "monitoring-schedule":
        return None
    schedule = _state(backend).schedules.get(name)
    if schedule is None:
        from moto.sagemaker.exceptions import ValidationError

        raise ValidationError(message=f"Could not find monitoring-schedule with name {name}")
    return schedule


def _get_schedule(self: Any, name: str) -> _Schedule:
    schedule = _state(self).schedules.get(name)
    if schedule is None:
        arn = f"arn:aws:sagemaker:{self.region_name}:{self.account_id}:monitoring-schedule/{name}"
        raise _not_found(f"Could not find monitoring schedule '{arn}'.")
    return schedule


def _execution_summary(self: Any, execution: _Execution) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "MonitoringScheduleName": execution.schedule_name,
        "ScheduledTime": execution.scheduled_time,
        "CreationTime": execution.created,
        "LastModifiedTime": execution.created,
        "MonitoringType": SUPPORTED_TYPE,
    }
    if execution.endpoint_name:
        summary["EndpointName"] = execution.endpoint_name
    if execution.definition_name:
        summary["MonitoringJobDefinitionName"] = execution.definition_name
    job = self.processing_jobs.get(execution.job_name) if execution.job_name else None
    if job is None:
        summary["MonitoringExecutionStatus"] = "Failed" if execution.failure_reason else "Pending"
        if execution.failure_reason:
            summary["FailureReason"] = execution.failure_reason
        return summary
    summary["ProcessingJobArn"] = job.arn
    summary["LastModifiedTime"] = getattr(job, "last_modified_time", None) or execution.created
    status = str(getattr(job, "processing_job_status", "InProgress"))
    if status == "Completed":
        exit_message = str(getattr(job, "exit_message", None) or "")
        status = "CompletedWithViolations" if exit_message.startswith("CompletedWithViolations") else "Completed"
    elif status == "Failed":
        summary["FailureReason"] = getattr(job, "failure_reason", None) or "Processing job failed"
    summary["MonitoringExecutionStatus"] = status
    return summary


def _schedule_description(self: Any, schedule: _Schedule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "MonitoringScheduleArn": schedule.arn,
        "MonitoringScheduleName": schedule.name,
        "MonitoringScheduleStatus": schedule.status,
        "MonitoringType": schedule.config.get("MonitoringType", SUPPORTED_TYPE),
        "CreationTime": schedule.created,
        "LastModifiedTime": schedule.modified,
        "MonitoringScheduleConfig": copy.deepcopy(schedule.config),
    }
    if schedule.endpoint_name:
        out["EndpointName"] = schedule.endpoint_name
    if schedule.failure_reason:
        out["FailureReason"] = schedule.failure_reason
    executions = [e for e in _state(self).executions if e.schedule_name == schedule.name]
    if executions:
        out["LastMonitoringExecutionSummary"] = _execution_summary(self, max(executions, key=lambda e: e.created))
    return out


def _b_describe(self: Any, monitoring_schedule_name: str) -> dict[str, Any]:
    with _LOCK:
        return _schedule_description(self, _get_schedule(self, monitoring_schedule_name))


def _b_delete(self: Any, monitoring_schedule_name: str) -> None:
    with _LOCK:
        _get_schedule(self, monitoring_schedule_name)
        state = _state(self)
        del state.schedules[monitoring_schedule_name]
        state.executions = [e for e in state.executions if e.schedule_name != monitoring_schedule_name]


def _b_set_status(self: Any, monitoring_schedule_name: str, status: str) -> None:
    with _LOCK:
        schedule = _get_schedule(self, monitoring_schedule_name)
        schedule.status = status
        schedule.modified = _utcnow()


def _to_dt(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    text = str(value).strip()
    try:
        return _to_dt(float(text))
    except ValueError:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _in_range(value: dt.datetime | None, after: Any, before: Any) -> bool:
    low, high = _to_dt(after), _to_dt(before)
    if value is None:
        return low is None and high is None
    return (low is None or value > low) and (high is None or value < high)


def _page(items: list[dict[str, Any]], max_results: Any, next_token: Any) -> tuple[list[dict[str, Any]], str | None]:
    start = int(next_token) if next_token and str(next_token).isdigit() else 0
    size = int(max_results) if max_results else 10
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def _b_list_schedules(self: Any, **f: Any) -> tuple[list[dict[str, Any]], str | None]:
    with _LOCK:
        schedules = list(_state(self).schedules.values())
        rows = []
        for s in schedules:
            if f.get("EndpointName") and s.endpoint_name != f["EndpointName"]:
                continue
            if f.get("NameContains") and f["NameContains"] not in s.name:
                continue
            if f.get("StatusEquals") and s.status != f["StatusEquals"]:
                continue
            if f.get("MonitoringJobDefinitionName") and s.definition_name != f["MonitoringJobDefinitionName"]:
                continue
            if f.get("MonitoringTypeEquals") and s.config.get("MonitoringType") != f["MonitoringTypeEquals"]:
                continue
            if not _in_range(s.created, f.get("CreationTimeAfter"), f.get("CreationTimeBefore")):
                continue
            if not _in_range(s.modified, f.get("LastModifiedTimeAfter"), f.get("LastModifiedTimeBefore")):
                continue
            row: dict[str, Any] = {
                "MonitoringScheduleName": s.name,
                "MonitoringScheduleArn": s.arn,
                "CreationTime": s.created,
                "LastModifiedTime": s.modified,
                "MonitoringScheduleStatus": s.status,
                "MonitoringType": s.config.get("MonitoringType", SUPPORTED_TYPE),
            }
            if s.endpoint_name:
                row["EndpointName"] = s.endpoint_name
            if s.definition_name:
                row["MonitoringJobDefinitionName"] = s.definition_name
            rows.append(row)
    key = {"Name": "MonitoringScheduleName", "Status": "MonitoringScheduleStatus"}.get(
        str(f.get("SortBy") or "CreationTime"), "CreationTime"
    )
    rows.sort(key=lambda r: r[key], reverse=str(f.get("SortOrder") or "Descending") == "Descending")
    return _page(rows, f.get("MaxResults"), f.get("NextToken"))


def _b_list_executions(self: Any, **f: Any) -> tuple[list[dict[str, Any]], str | None]:
    with _LOCK:
        rows = [_execution_summary(self, e) for e in _state(self).executions]
    out = []
    for r in rows:
        if f.get("MonitoringScheduleName") and r["MonitoringScheduleName"] != f["MonitoringScheduleName"]:
            continue
        if f.get("EndpointName") and r.get("EndpointName") != f["EndpointName"]:
            continue
        if f.get("StatusEquals") and r["MonitoringExecutionStatus"] != f["StatusEquals"]:
            continue
        if (
            f.get("MonitoringJobDefinitionName")
            and r.get("MonitoringJobDefinitionName") != f["MonitoringJobDefinitionName"]
        ):
            continue
        if f.get("MonitoringTypeEquals") and r.get("MonitoringType") != f["MonitoringTypeEquals"]:
            continue
        if not _in_range(r["ScheduledTime"], f.get("ScheduledTimeAfter"), f.get("ScheduledTimeBefore")):
            continue
        if not _in_range(r["CreationTime"], f.get("CreationTimeAfter"), f.get("CreationTimeBefore")):
            continue
        if not _in_range(
            _to_dt(r["LastModifiedTime"]), f.get("LastModifiedTimeAfter"), f.get("LastModifiedTimeBefore")
        ):
            continue
        out.append(r)
    key = {"CreationTime": "CreationTime", "Status": "MonitoringExecutionStatus"}.get(
        str(f.get("SortBy") or "ScheduledTime"), "ScheduledTime"
    )
    out.sort(key=lambda r: r[key], reverse=str(f.get("SortOrder") or "Descending") == "Descending")
    return _page(out, f.get("MaxResults"), f.get("NextToken"))


# --- the clock: run one execution now ---------------------------------------------------------------


def _boto(service: str, region: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        service, region_name=region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None
    )


def _find_schedule(name: str) -> tuple[Any, _Schedule]:
    from moto.sagemaker.models import sagemaker_backends

    from localaws.clients import region as current_region

    preferred = current_region()
    found: list[tuple[Any, _Schedule]] = []
    for per_account in dict.values(sagemaker_backends):
        for region_name, backend in dict.items(per_account):
            schedule = _state(backend).schedules.get(name)
            if schedule is not None:
                found.append((backend, schedule))
                if region_name == preferred:
                    return backend, schedule
    if not found:
        raise MonitoringError(f"Could not find monitoring schedule {name!r}")
    return found[0]


def _offset(value: Any) -> dt.timedelta | None:
    match = _OFFSET.match(str(value or "").strip())
    if not match:
        return None
    delta = dt.timedelta(hours=int(match["h"] or 0), minutes=int(match["m"] or 0), seconds=int(match["s"] or 0))
    return -delta if match["sign"] == "-" else delta


def _window(schedule: _Schedule, start: Any, end: Any) -> tuple[dt.datetime, dt.datetime]:
    now = _utcnow().replace(microsecond=0)
    config = schedule.config.get("ScheduleConfig") or {}
    end_dt = _to_dt(end)
    start_dt = _to_dt(start)
    if end_dt is None:
        offset = _offset(config.get("DataAnalysisEndTime"))
        end_dt = now + offset if offset is not None else now
    if start_dt is None:
        offset = _offset(config.get("DataAnalysisStartTime"))
        start_dt = now + offset if offset is not None else end_dt - dt.timedelta(hours=1)
    if start_dt >= end_dt:
        raise MonitoringError(f"the window start {start_dt.isoformat()} is not before its end {end_dt.isoformat()}")
    return start_dt, end_dt


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _split(uri: str) -> tuple[str, str]:
    from localaws.sagemaker.sandbox import split_s3_uri

    return split_s3_uri(uri)


def _join(uri: str, *parts: str) -> str:
    from localaws.sagemaker.sandbox import join_s3

    return join_s3(uri, *parts)


def _capture_destination(sm: Any, endpoint: str) -> str:
    try:
        described = sm.describe_endpoint(EndpointName=endpoint)
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    except Exception as exc:  # botocore ClientError: the endpoint or its config is gone
        raise MonitoringError(f"Could not find endpoint {endpoint!r} or its endpoint configuration: {exc}") from exc
    capture = config.get("DataCaptureConfig") or {}
    destination = capture.get("DestinationS3Uri")
    if not destination or capture.get("EnableCapture") is False:
        raise MonitoringError(f"Endpoint {endpoint!r} has no data capture configured (DataCaptureConfig)")
    modes = {str(o.get("CaptureMode")) for o in capture.get("CaptureOptions") or []}
    if modes and not modes & {"Input", "InputAndOutput"}:
        raise MonitoringError(f"Endpoint {endpoint!r} does not capture its input (CaptureOptions {sorted(modes)})")
    return str(destination)


_HOUR_KEY = re.compile(r"^(?P<variant>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/[^/]+$")


def _capture_hours(
    s3: Any, destination: str, endpoint: str, start: dt.datetime, end: dt.datetime
) -> list[tuple[str, dt.datetime]]:
    """(variant, hour) of every capture folder with objects whose hour overlaps [start, end)."""
    bucket, prefix = _split(_join(destination, endpoint) + "/")
    found: set[tuple[str, dt.datetime]] = set()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            match = _HOUR_KEY.match(item["Key"][len(prefix) :])
            if not match:
                continue
            hour = dt.datetime(int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]), tzinfo=dt.UTC)
            if hour < end and hour + dt.timedelta(hours=1) > start:
                found.add((match["variant"], hour))
    return sorted(found, key=lambda vh: (vh[1], vh[0]))


def _baseline_uris(backend: Any, definition: _Definition) -> tuple[str | None, str | None]:
    constraints, statistics = definition.constraints_uri, definition.statistics_uri
    if definition.baselining_job and not (constraints and statistics):
        job = backend.processing_jobs.get(definition.baselining_job)
        outputs = ((getattr(job, "processing_output_config", None) or {}).get("Outputs") or []) if job else []
        base = next((o["S3Output"]["S3Uri"] for o in outputs if o.get("S3Output")), None)
        if base is None:
            raise MonitoringError(
                f"baselining job {definition.baselining_job!r} has no S3 output to read the baseline from"
            )
        constraints = constraints or _join(base, "constraints.json")
        statistics = statistics or _join(base, "statistics.json")
    return constraints, statistics


def _hour_path(hour: dt.datetime) -> str:
    return hour.strftime("%Y/%m/%d/%H")


def _record_failure(
    backend: Any, schedule: _Schedule, end: dt.datetime, definition_name: str | None, reason: str
) -> None:
    with _LOCK:
        _state(backend).executions.append(
            _Execution(schedule.name, end, schedule.endpoint_name, definition_name, None, failure_reason=reason[:1024])
        )


def run_monitoring_now(
    schedule_name: str,
    start_time: dt.datetime | str | None = None,
    end_time: dt.datetime | str | None = None,
    *,
    wait: bool = True,
    timeout: float = 600.0,
) -> str:
    """Start one execution of the schedule for the window [start_time, end_time) and return
    its processing job's name.

    Default window: the schedule's ``DataAnalysisStartTime``/``EndTime`` offsets from now
    (one-time ``NOW`` schedules), else the hour before now. The execution's ScheduledTime is
    the window end. With ``wait`` (default) this returns when the job has ended (raising
    ``TimeoutError`` after ``timeout`` seconds); the execution's status is then final. When
    the execution cannot start (unknown endpoint, no data capture, no job runner), it is
    recorded as Failed and :class:`MonitoringError` is raised.
    """
    from localaws.sagemaker.jobs import runner as sagemaker_jobs
    from localaws.sagemaker.jobs.containers import local_image

    if local_image(ANALYZER_REPOSITORY) is None:  # service.install() registers it
        raise MonitoringError("localaws.sagemaker.monitor.service is not installed (call install())")
    backend, schedule = _find_schedule(schedule_name)
    start, end = _window(schedule, start_time, end_time)
    scheduled = end.replace(microsecond=0)
    definition: _Definition | None = None
    try:
        if not sagemaker_jobs.installed():
            raise MonitoringError("the local job runner (localaws.sagemaker.jobs.runner) is not installed")
        if schedule.status != "Scheduled":
            raise MonitoringError(f"monitoring schedule {schedule_name!r} is {schedule.status}, not Scheduled")
        definition = _definition(backend, schedule.config)
        endpoint = str(definition.endpoint_input.get("EndpointName"))
        region = backend.region_name
        sm, s3 = _boto("sagemaker", region), _boto("s3", region)
        destination = _capture_destination(sm, endpoint)
        hours = _capture_hours(s3, destination, endpoint, start, end)
        constraints_uri, statistics_uri = _baseline_uris(backend, definition)
        request = _job_request(
            schedule, definition, destination, endpoint, hours, constraints_uri, statistics_uri, start, end
        )
    except Exception as exc:
        reason = str(exc.args[0]) if isinstance(exc, MonitoringError) and exc.args else str(exc)
        _record_failure(backend, schedule, scheduled, definition.name if definition else None, reason)
        raise MonitoringError(reason) from exc
    job_name = request["ProcessingJobName"]
    execution = _Execution(schedule.name, scheduled, endpoint, definition.name, job_name)
    with _LOCK:
        _state(backend).executions.append(execution)  # before the job starts: its hook looks it up
    try:
        sm.create_processing_job(**request)
    except Exception as exc:
        with _LOCK:
            execution.job_name = None
            execution.failure_reason = f"could not create the processing job: {exc}"[:1024]
        raise MonitoringError(execution.failure_reason) from exc
    if wait and not sagemaker_jobs.wait_for_jobs(timeout=timeout, names=[job_name]):
        raise TimeoutError(f"monitoring job {job_name} still running after {timeout} s")
    return job_name


def _job_request(
    schedule: _Schedule,
    definition: _Definition,
    destination: str,
    endpoint: str,
    hours: list[tuple[str, dt.datetime]],
    constraints_uri: str | None,
    statistics_uri: str | None,
    start: dt.datetime,
    end: dt.datetime,
) -> dict[str, Any]:
    if not definition.outputs or not (definition.outputs[0] or {}).get("S3Output"):
        raise MonitoringError("the monitoring job definition has no MonitoringOutputs[].S3Output")
    endpoint_local = str(definition.endpoint_input.get("LocalPath") or DEFAULT_ENDPOINT_LOCAL_PATH).rstrip("/")
    s3_output = definition.outputs[0]["S3Output"]
    output_local = str(s3_output.get("LocalPath") or DEFAULT_OUTPUT_LOCAL_PATH).rstrip("/")
    mode = definition.endpoint_input.get("S3InputMode") or "File"
    distribution = definition.endpoint_input.get("S3DataDistributionType") or "FullyReplicated"
    inputs: list[dict[str, Any]] = []
    for index, (variant, hour) in enumerate(hours, start=1):
        inputs.append(
            {
                "InputName": f"input_{index}",
                "S3Input": {
                    "S3Uri": _join(destination, endpoint, variant, _hour_path(hour)),
                    "LocalPath": f"{endpoint_local}/{endpoint}/{variant}/{_hour_path(hour)}",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": mode,
                    "S3DataDistributionType": distribution,
                },
            }
        )
    env = dict(definition.environment)
    env.update(
        {
            "dataset_format": json.dumps(CAPTURE_FORMAT),
            "dataset_source": endpoint_local,
            "output_path": output_local,
            "publish_cloudwatch_metrics": env.get("publish_cloudwatch_metrics", "Enabled"),
            "sagemaker_endpoint_name": endpoint,
            "sagemaker_monitoring_schedule_name": schedule.name,
            "start_time": _iso(start),
            "end_time": _iso(end),
        }
    )
    for uri, local_dir, input_name, key in (
        (constraints_uri, BASELINE_CONSTRAINTS_DIR, "constraints", "baseline_constraints"),
        (statistics_uri, BASELINE_STATISTICS_DIR, "statistics", "baseline_statistics"),
    ):
        if not uri:
            continue
        inputs.append(
            {
                "InputName": input_name,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": local_dir,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            }
        )
        env[key] = f"{local_dir}/{uri.rstrip('/').rsplit('/', 1)[-1]}"
    app: dict[str, Any] = {"ImageUri": definition.image}
    if definition.entrypoint:
        app["ContainerEntrypoint"] = definition.entrypoint
    if definition.arguments:
        app["ContainerArguments"] = definition.arguments
    request: dict[str, Any] = {
        "ProcessingJobName": f"model-monitoring-{end:%Y%m%d%H%M}-{uuid.uuid4().hex[:8]}",
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "result",
                    "S3Output": {
                        "S3Uri": _join(str(s3_output["S3Uri"]), endpoint, schedule.name, _hour_path(end)),
                        "LocalPath": output_local,
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": int(definition.cluster.get("InstanceCount") or 1),
                "InstanceType": str(definition.cluster.get("InstanceType") or "ml.m5.xlarge"),
                "VolumeSizeInGB": int(definition.cluster.get("VolumeSizeInGB") or 20),
            }
        },
        "StoppingCondition": {
            "MaxRuntimeInSeconds": int(definition.stopping.get("MaxRuntimeInSeconds") or DEFAULT_MAX_RUNTIME)
        },
        "AppSpecification": app,
        "Environment": env,
        "RoleArn": definition.role_arn,
    }
    if definition.network:
        request["NetworkConfig"] = definition.network
    return request


# --- after the analyzer ran: the platform publishes its metrics -----------------------------------


def after_analyzer_run(job: Any) -> None:
    """The local image's hook: publish the metric records of a monitoring execution."""
    with _LOCK:
        execution = next((e for e in _state(job.backend).executions if e.job_name == job.name), None)
    if execution is None:
        return  # a baselining job, or an analyzer job started by hand
    env = job.get("environment") or {}
    if str(env.get("publish_cloudwatch_metrics", "")).lower() != "enabled":
        return
    records = list(iter_metric_records(job.sandbox / "opt" / "ml" / "output" / "metrics" / "cloudwatch"))
    if not records:
        return
    namespace = ENDPOINT_NAMESPACE if env.get("sagemaker_endpoint_name") else BATCH_NAMESPACE
    metric_data = [_metric_datum(r) for r in records]
    cloudwatch = _boto("cloudwatch", job.backend.region_name)
    for i in range(0, len(metric_data), 20):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=metric_data[i : i + 20])
    with _LOCK:
        execution.metrics_published = len(metric_data)


def iter_metric_records(path: Path) -> Iterator[dict[str, Any]]:
    """The metric records under ``path`` (a file, or a folder of files): JSON lines, or a
    JSON array / object per file, as a BYOC container writes them."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    for file in files:
        text = file.read_text(encoding="utf-8").strip()
        if not text:
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            doc = [json.loads(line) for line in text.splitlines() if line.strip()]
        for record in doc if isinstance(doc, list) else [doc]:
            if isinstance(record, dict):
                yield record


def _metric_datum(record: dict[str, Any]) -> dict[str, Any]:
    datum: dict[str, Any] = {
        "MetricName": str(record["MetricName"]),
        "Dimensions": [{"Name": str(d["Name"]), "Value": str(d["Value"])} for d in record.get("Dimensions") or []],
        "Timestamp": _to_dt(record.get("Timestamp")) or _utcnow(),
        "Unit": str(record.get("Unit") or "None"),
    }
    if "StatisticValues" in record:
        datum["StatisticValues"] = {k: float(v) for k, v in record["StatisticValues"].items()}
    else:
        datum["Value"] = float(record["Value"])
    return datum


def _named(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    function.__name__ = function.__qualname__ = name
    return function


#: the methods added to moto's ``SageMakerModelBackend``, by name
BACKEND_METHODS: dict[str, Callable[..., Any]] = {
    "create_monitoring_schedule": _b_create,
    "update_monitoring_schedule": _b_update,
    "describe_monitoring_schedule": _b_describe,
    "delete_monitoring_schedule": _b_delete,
    "list_monitoring_schedules": _b_list_schedules,
    "list_monitoring_executions": _b_list_executions,
    "start_monitoring_schedule": _named(lambda self, name: _b_set_status(self, name, "Scheduled"),
                                        "start_monitoring_schedule"),
    "stop_monitoring_schedule": _named(lambda self, name: _b_set_status(self, name, "Stopped"),
                                       "stop_monitoring_schedule"),
}

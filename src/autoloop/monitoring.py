"""Monitoring requests (pure): baselines, monitoring jobs and their schedules, for both backends.

``MonitoringBackend=autoloop`` (the default): the baseline and every monitoring run are
ordinary Processing jobs running ``ml/monitor.py`` in the model's framework image, the way
every other step runs. An EventBridge Scheduler schedule per endpoint starts the
MonitoringPipeline state machine, which plans the window (``autoloop.monitoring_steps``),
runs the job, and hands its report to the drift handler. No Model Monitor API is called.

``MonitoringBackend=model-monitor`` (accounts that still have SageMaker Model Monitor): the
baseline and the executions run the region's Model Monitor analyzer image
(``ModelMonitorImageUri``), exactly as the SageMaker SDK's ``DefaultModelMonitor`` would request
them, on a SageMaker monitoring schedule; the calibration step (``ml/calibrate.py``) replaces
its one global drift threshold with per-feature thresholds.

Both write Model Monitor's file formats (``statistics.json``, ``constraints.json``,
``constraint_violations.json``), so the drift handler reads either.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from autoloop.jobs import (
    DEFAULT_SECURITY,
    PROC,
    JobContext,
    JobSecurity,
    config_key,
    processing_guards,
    processing_request,
    s3_input,
    s3_output,
)
from autoloop.naming import fit_name, job_name

MONITOR_OUTPUT = f"{PROC}/output"
HOURLY = "cron(0 * ? * * *)"
#: The same hour marks in EventBridge Scheduler's syntax (minutes hours day month weekday year).
SCHEDULER_HOURLY = "cron(0 * * * ? *)"
BACKENDS = ("autoloop", "model-monitor")
MONITOR_SCRIPT = "monitor.py"
#: Scheduler schedule names: at most 64 characters of [0-9a-zA-Z-_.].
MAX_SCHEDULE_NAME = 64
SCHEDULE_GROUP = "default"
MONITORING_REPORT = "monitoring_report.json"


@dataclass(frozen=True)
class MonitoringSettings:
    image_uri: str
    sample_size: int = 500
    quantile: float = 0.99
    margin: float = 1.2
    floor: float = 0.02
    schedule_expression: str = HOURLY


def baseline_request(ctx: JobContext, baseline_uri: str, monitor_image: str) -> dict[str, Any]:
    """A "suggest baseline" processing job over the training run's feature baseline."""
    local = f"{PROC}/input/baseline_dataset_input"
    return {
        "ProcessingJobName": job_name(ctx.run_id, "baseline"),
        "RoleArn": ctx.role_arn,
        "AppSpecification": {"ImageUri": monitor_image},
        "Environment": {
            "dataset_format": json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
            "dataset_source": local,
            "output_path": MONITOR_OUTPUT,
            "publish_cloudwatch_metrics": "Disabled",
        },
        "ProcessingInputs": [s3_input("baseline_dataset_input", baseline_uri, local)],
        **processing_guards(ctx, [s3_output("monitoring_output", ctx.uri("baseline"), MONITOR_OUTPUT)], volume_gb=20),
        "Tags": ctx.tags("baseline"),
    }


def calibrate_request(ctx: JobContext, baseline_uri: str, constraints_uri: str,
                      settings: MonitoringSettings) -> dict[str, Any]:
    return processing_request(
        ctx, "calibrate", "calibrate.py",
        [
            "--baseline-dir", f"{PROC}/input/baseline",
            "--constraints", f"{PROC}/input/constraints/constraints.json",
            "--output-dir", f"{PROC}/output/calibrated",
            "--sample-size", str(settings.sample_size),
            "--quantile", str(settings.quantile),
            "--margin", str(settings.margin),
            "--floor", str(settings.floor),
            "--seed", "42",
        ],
        [
            s3_input("baseline", baseline_uri, f"{PROC}/input/baseline"),
            s3_input("constraints", constraints_uri, f"{PROC}/input/constraints", "S3Prefix"),
        ],
        [s3_output("calibrated", ctx.uri("calibrate"), f"{PROC}/output/calibrated")],
    )


def own_baseline_request(ctx: JobContext, baseline_uri: str) -> dict[str, Any]:
    """The autoloop backend's baseline: ``monitor.py baseline`` over the training features, in the
    framework image; ``statistics.json`` and ``constraints.json`` land where Model Monitor's would."""
    local = f"{PROC}/input/baseline"
    return processing_request(
        ctx, "baseline", MONITOR_SCRIPT,
        ["baseline", "--dataset-dir", local, "--output-dir", MONITOR_OUTPUT],
        [s3_input("baseline", baseline_uri, local)],
        [s3_output("monitoring_output", ctx.uri("baseline"), MONITOR_OUTPUT)],
    )


@dataclass(frozen=True)
class CheckInputs:
    """What one monitoring run of the autoloop backend reads and where its report goes."""

    model: str
    baseline_uri: str  # the folder with statistics.json and constraints.json
    capture_manifest_uri: str
    ground_truth_manifest_uri: str | None
    output_uri: str
    window_start: str
    window_end: str
    metric: str
    direction: str
    threshold: float
    champion_metric: float | None
    quality_margin: float


def check_request(ctx: JobContext, inputs: CheckInputs, settings: MonitoringSettings) -> dict[str, Any]:
    """``monitor.py check``: the window's captured requests (a manifest of capture files) against
    the baseline, calibrated at the window's size, and with ground truth, the model's metric."""
    config_uri = f"s3://{ctx.artifacts_bucket}/{config_key(inputs.model)}"
    args = [
        "check",
        "--config", f"{PROC}/input/config/{inputs.model}.json",
        "--baseline-dir", f"{PROC}/input/baseline",
        "--capture-dir", f"{PROC}/input/capture",
        "--output-dir", MONITOR_OUTPUT,
        "--window-start", inputs.window_start, "--window-end", inputs.window_end,
        "--metric", inputs.metric, "--direction", inputs.direction,
        "--threshold", repr(inputs.threshold), "--quality-margin", repr(inputs.quality_margin),
        "--quantile", repr(settings.quantile), "--margin", repr(settings.margin), "--floor", repr(settings.floor),
        "--seed", "42",
    ]
    job_inputs = [
        s3_input("capture", inputs.capture_manifest_uri, f"{PROC}/input/capture", "ManifestFile"),
        s3_input("baseline", inputs.baseline_uri, f"{PROC}/input/baseline"),
        s3_input("config", config_uri, f"{PROC}/input/config"),
    ]
    if inputs.champion_metric is not None:
        args += ["--champion-metric", repr(inputs.champion_metric)]
    if inputs.ground_truth_manifest_uri:
        args += ["--ground-truth-dir", f"{PROC}/input/groundtruth"]
        job_inputs.append(s3_input("groundtruth", inputs.ground_truth_manifest_uri, f"{PROC}/input/groundtruth",
                                   "ManifestFile"))
    request = processing_request(ctx, "monitor", MONITOR_SCRIPT, args, job_inputs,
                                 [s3_output("monitoring_output", inputs.output_uri, MONITOR_OUTPUT)])
    # Each run is bounded by the hour the schedule gives it.
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": min(ctx.max_runtime_seconds, 3600)}
    return request


def monitoring_run_id(model: str, endpoint: str, due: datetime) -> str:
    """``<model>-<6 hex of the endpoint>-m<yyyymmddHHMMSS>``: one run per endpoint and due time,
    so a schedule delivered twice starts one job, and two stacks never share a job name."""
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:6]
    return f"{model}-{digest}-m{due:%Y%m%d%H%M%S}"


def report_uri(artifacts_bucket: str, endpoint: str, due: datetime) -> str:
    """Where a run's report goes: Model Monitor's own layout, ``<endpoint>/<schedule>/yyyy/mm/dd/hh``
    (plus minutes and seconds, for runs started by hand within the hour)."""
    return (f"{reports_uri(artifacts_bucket)}/{endpoint}/{monitor_schedule_name(endpoint)}/"
            f"{due:%Y/%m/%d/%H}/{due:%M%S}")


def monitor_schedule_name(endpoint: str) -> str:
    """The endpoint's Scheduler schedule: ``<endpoint>-monitor`` (at most 64 characters)."""
    return fit_name(endpoint, "-monitor", MAX_SCHEDULE_NAME)


def scheduler_request(*, endpoint: str, model: str, target_arn: str, role_arn: str, statistics_uri: str,
                      constraints_uri: str, expression: str = SCHEDULER_HOURLY,
                      kms_key_arn: str = "") -> dict[str, Any]:
    """An EventBridge Scheduler schedule that starts the MonitoringPipeline for one endpoint.

    Scheduler replaces ``<aws.scheduler.scheduled-time>`` in the input with the due time, which
    names the run (a retried delivery starts the same job) and ends its window."""
    payload = {
        "endpoint": endpoint, "model": model, "schedule": monitor_schedule_name(endpoint),
        "statistics_uri": statistics_uri, "constraints_uri": constraints_uri,
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    return {
        "Name": monitor_schedule_name(endpoint),
        "GroupName": SCHEDULE_GROUP,
        "Description": f"Autoloop monitoring of {endpoint}"[:512],
        "ScheduleExpression": expression,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": target_arn, "RoleArn": role_arn, "Input": json.dumps(payload),
            "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
        },
        **({"KmsKeyArn": kms_key_arn} if kms_key_arn else {}),
    }


def schedule_name(endpoint: str) -> str:
    """``<endpoint>-dq``; a hash stands in for the end of a long endpoint name, so the schedule
    name stays within SageMaker's 63 characters (an endpoint may have 63 itself)."""
    return fit_name(endpoint, "-dq")


def reports_uri(artifacts_bucket: str) -> str:
    """Model Monitor appends ``<endpoint>/<schedule>/yyyy/mm/dd/hh`` to this for each execution."""
    return f"s3://{artifacts_bucket}/monitoring"


def schedule_request(*, endpoint: str, artifacts_bucket: str, role_arn: str, instance_type: str,
                     constraints_uri: str, statistics_uri: str, settings: MonitoringSettings,
                     max_runtime_seconds: int, tags: list[dict[str, str]],
                     security: JobSecurity = DEFAULT_SECURITY) -> dict[str, Any]:
    """A data-quality schedule on the endpoint, with the calibrated constraints as its baseline.

    Each monitoring execution is bounded (at most an hour: the schedule is hourly), network
    isolated, and encrypted and placed in the VPC as ``security`` says.
    """
    return {
        "MonitoringScheduleName": schedule_name(endpoint),
        "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": settings.schedule_expression},
            "MonitoringType": "DataQuality",
            "MonitoringJobDefinition": {
                "BaselineConfig": {
                    "ConstraintsResource": {"S3Uri": constraints_uri},
                    "StatisticsResource": {"S3Uri": statistics_uri},
                },
                "MonitoringInputs": [{"EndpointInput": {
                    "EndpointName": endpoint, "LocalPath": f"{PROC}/input/endpoint",
                    "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated",
                }}],
                "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {
                    "S3Uri": reports_uri(artifacts_bucket), "LocalPath": MONITOR_OUTPUT,
                    "S3UploadMode": "EndOfJob",
                }}], **security.key()},
                "MonitoringResources": {"ClusterConfig": {
                    "InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 20,
                    **security.key("VolumeKmsKeyId"),
                }},
                "MonitoringAppSpecification": {"ImageUri": settings.image_uri},
                "StoppingCondition": {"MaxRuntimeInSeconds": min(max_runtime_seconds, 3600)},
                "Environment": {"publish_cloudwatch_metrics": "Enabled"},
                "NetworkConfig": security.network_config(),
                "RoleArn": role_arn,
            },
        },
        "Tags": tags,
    }

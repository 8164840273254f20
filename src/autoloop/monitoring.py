"""Model Monitor requests (pure): the baseline job, the threshold calibration, the schedule.

On AWS the baseline and the monitoring executions run the region's Model Monitor
analyzer image (``ModelMonitorImageUri``), exactly as the SageMaker SDK's
``DefaultModelMonitor`` would request them. The calibration step runs ``ml/calibrate.py``
in the scikit-learn container: it replaces Model Monitor's one global drift threshold
with per-feature thresholds set from the baseline's own sampling noise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from autoloop.jobs import (
    DEFAULT_SECURITY,
    PROC,
    JobContext,
    JobSecurity,
    processing_guards,
    processing_request,
    s3_input,
    s3_output,
)
from autoloop.naming import fit_name, job_name

MONITOR_OUTPUT = f"{PROC}/output"
HOURLY = "cron(0 * ? * * *)"


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

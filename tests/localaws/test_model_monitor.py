"""localaws.sagemaker.monitor.service: Model Monitor data quality on moto, with the analyzer really run.

Each test runs under ``moto.mock_aws()`` with the job runner and this extension installed.
Capture data is written to S3 by the tests themselves, in SageMaker's documented layout
(``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``, one JSON record a line),
from ``autoloop_cli.datagen`` (the churn features, label dropped). Waits are bounded.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from autoloop_cli import datagen
from localaws.sagemaker.jobs import runner as sagemaker_jobs
from localaws.sagemaker.jobs.containers import image_repository, local_image
from localaws.sagemaker.monitor import service as model_monitor
from tests.support import use_fake_aws

REGION = "us-east-1"
BUCKET = "mm-bucket"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
ANALYZER_IMAGE = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
REPO = Path(__file__).resolve().parents[2]
FEATURES = list(datagen.COLUMNS[1:])
WINDOW_START = dt.datetime(2024, 5, 1, 2, 0, tzinfo=dt.UTC)
WINDOW_END = dt.datetime(2024, 5, 1, 3, 0, tzinfo=dt.UTC)
CAPTURE = f"s3://{BUCKET}/datacapture"
REPORTS = f"s3://{BUCKET}/monitoring/reports"
JOB_WAIT = 60.0
DRIFT = re.compile(r"distance: (.+) exceeds threshold: (.+)")


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    use_fake_aws(monkeypatch, local_server=False)  # in-process moto
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(tmp_path / "home"))
    jobs_were_installed, monitor_was_installed = sagemaker_jobs.installed(), model_monitor.installed()
    sagemaker_jobs.install()
    model_monitor.install()
    model_monitor.install()  # idempotent
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        try:
            yield {
                "s3": s3,
                "sm": boto3.client("sagemaker", region_name=REGION),
                "cw": boto3.client("cloudwatch", region_name=REGION),
                "tmp": tmp_path,
            }
        finally:
            sagemaker_jobs.stop_all_jobs(timeout=15)
            assert sagemaker_jobs.wait_for_jobs(timeout=15)
            if not monitor_was_installed:
                model_monitor.uninstall()
            if not jobs_were_installed:
                sagemaker_jobs.uninstall()


def key_of(uri: str) -> str:
    return uri.split("/", 3)[3]


def get_json(s3: Any, uri: str) -> Any:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key_of(uri))["Body"].read())


def keys(s3: Any, prefix: str) -> list[str]:
    response = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))


def finished(name: str) -> None:
    assert sagemaker_jobs.wait_for_jobs(timeout=JOB_WAIT, names=[name]), f"{name} still running"


def features(rows: int, seed: int, drift: float = 0.0) -> pd.DataFrame:
    return datagen.generate(rows, seed=seed, drift=drift)[FEATURES]


def baseline_job(aws: dict[str, Any], frame: pd.DataFrame, prefix: str = "baseline") -> tuple[str, str, str]:
    """A baselining job shaped as DefaultModelMonitor.suggest_baseline creates it.
    Returns (job name, constraints URI, statistics URI)."""
    s3, sm = aws["s3"], aws["sm"]
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/data/baseline.csv", Body=frame.to_csv(index=False).encode())
    name = f"baseline-suggestion-job-{uuid.uuid4().hex[:8]}"
    results = f"s3://{BUCKET}/{prefix}/results"
    sm.create_processing_job(
        ProcessingJobName=name,
        ProcessingInputs=[
            {
                "InputName": "baseline_dataset_input",
                "AppManaged": False,
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/{prefix}/data/",
                    "LocalPath": "/opt/ml/processing/input/baseline_dataset_input",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                    "S3CompressionType": "None",
                },
            }
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "monitoring_output",
                    "S3Output": {
                        "S3Uri": results,
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                    "AppManaged": False,
                }
            ]
        },
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}
        },
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        AppSpecification={"ImageUri": ANALYZER_IMAGE},
        Environment={
            "dataset_format": json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
            "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
            "output_path": "/opt/ml/processing/output",
            "publish_cloudwatch_metrics": "Disabled",
        },
        RoleArn=ROLE,
    )
    finished(name)
    return name, f"{results}/constraints.json", f"{results}/statistics.json"


def endpoint(sm: Any, name: str, *, capture: bool = True) -> None:
    sm.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/model.tar.gz"},
    )
    config: dict[str, Any] = {
        "EndpointConfigName": f"{name}-config",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    }
    if capture:
        config["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": CAPTURE,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        }
    sm.create_endpoint_config(**config)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def capture_record(rows: list[str], *, b64: bool = False, spaced: bool = False) -> str:
    data = "".join(r + "\n" for r in rows)
    record = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": base64.b64encode(data.encode()).decode() if b64 else data,
                "encoding": "BASE64" if b64 else "CSV",
            },
            "endpointOutput": {
                "observedContentType": "text/csv; charset=utf-8",
                "mode": "OUTPUT",
                "data": "\n".join("0.25" for _ in rows),
                "encoding": "CSV",
            },
        },
        "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": "2024-05-01T02:17:49Z"},
        "eventVersion": "0",
    }
    return json.dumps(record) if spaced else json.dumps(record, separators=(",", ":"))


def write_capture(
    s3: Any,
    endpoint_name: str,
    frame: pd.DataFrame,
    *,
    hour: dt.datetime = WINDOW_START,
    files: int = 2,
    truncate: bool = False,
) -> list[str]:
    """Capture files for ``frame`` (features in order, no header): the first file compact
    with one row per record, the second with json.dumps spacing, BASE64 payloads and batched
    records (up to 3 rows), as SageMaker writes when no CSV content type is configured."""
    lines = frame.to_csv(header=False, index=False, lineterminator="\n").splitlines()
    chunks = np.array_split(np.arange(len(lines)), files)
    written = []
    for index, chunk in enumerate(chunks):
        rows = [lines[i] for i in chunk]
        if index % 2 == 0:
            body = "\n".join(capture_record([r]) for r in rows)
        else:
            body = "\n".join(capture_record(rows[i : i + 3], b64=True, spaced=True) for i in range(0, len(rows), 3))
        if truncate and index == len(chunks) - 1:
            body = body[: -len(body.rsplit("\n", 1)[-1]) // 2]  # cut the last record in half
        key = f"datacapture/{endpoint_name}/AllTraffic/{hour:%Y/%m/%d/%H}/{10 + index:02d}-15-820-{uuid.uuid4()}.jsonl"
        s3.put_object(Bucket=BUCKET, Key=key, Body=(body + "\n").encode())
        written.append(key)
    return written


def schedule(
    sm: Any, name: str, endpoint_name: str, constraints: str, statistics: str, *, env: dict[str, str] | None = None
) -> str:
    """A data-quality job definition and a schedule on it, as DefaultModelMonitor creates them."""
    definition = f"{name}-def"
    sm.create_data_quality_job_definition(
        JobDefinitionName=definition,
        DataQualityBaselineConfig={
            "ConstraintsResource": {"S3Uri": constraints},
            "StatisticsResource": {"S3Uri": statistics},
        },
        DataQualityAppSpecification={
            "ImageUri": ANALYZER_IMAGE,
            "Environment": {"publish_cloudwatch_metrics": "Enabled", **(env or {})},
        },
        DataQualityJobInput={
            "EndpointInput": {
                "EndpointName": endpoint_name,
                "LocalPath": "/opt/ml/processing/input/endpoint",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        DataQualityJobOutputConfig={
            "MonitoringOutputs": [
                {"S3Output": {"S3Uri": REPORTS, "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}
            ]
        },
        JobResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}},
        RoleArn=ROLE,
        StoppingCondition={"MaxRuntimeInSeconds": 1800},
    )
    return str(
        sm.create_monitoring_schedule(
            MonitoringScheduleName=name,
            MonitoringScheduleConfig={
                "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
                "MonitoringJobDefinitionName": definition,
                "MonitoringType": "DataQuality",
            },
        )["MonitoringScheduleArn"]
    )


def report_prefix(endpoint_name: str, schedule_name: str) -> str:
    return f"monitoring/reports/{endpoint_name}/{schedule_name}/{WINDOW_END:%Y/%m/%d/%H}"


def violations_of(s3: Any, endpoint_name: str, schedule_name: str) -> list[dict[str, str]]:
    doc = get_json(s3, f"s3://{BUCKET}/{report_prefix(endpoint_name, schedule_name)}/constraint_violations.json")
    return list(doc["violations"])


def drift_by_feature(violations: list[dict[str, str]]) -> dict[str, tuple[float, float]]:
    out = {}
    for v in violations:
        if v["constraint_check_type"] == "baseline_drift_check":
            match = DRIFT.search(v["description"])
            assert match, v["description"]
            out[v["feature_name"]] = (float(match[1]), float(match[2]))
    return out


def execution(sm: Any, schedule_name: str) -> dict[str, Any]:
    summaries = sm.list_monitoring_executions(MonitoringScheduleName=schedule_name)["MonitoringExecutionSummaries"]
    assert len(summaries) == 1, summaries
    return dict(summaries[0])


def metric(cw: Any, name: str, endpoint_name: str, schedule_name: str, stat: str = "Maximum") -> float | None:
    points = cw.get_metric_statistics(
        Namespace=model_monitor.ENDPOINT_NAMESPACE,
        MetricName=name,
        Dimensions=[
            {"Name": "Endpoint", "Value": endpoint_name},
            {"Name": "MonitoringSchedule", "Value": schedule_name},
        ],
        StartTime=WINDOW_START,
        EndTime=WINDOW_END + dt.timedelta(hours=1),
        Period=3600,
        Statistics=[stat],
    )["Datapoints"]
    return float(points[0][stat]) if points else None


def event_queue() -> tuple[Any, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    url = sqs.create_queue(QueueName="mm-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="mm-processing-jobs",
        EventPattern=json.dumps(
            {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Processing Job State Change"]}
        ),
    )
    events.put_targets(Rule="mm-processing-jobs", Targets=[{"Id": "q", "Arn": arn}])
    return sqs, url


def drain_queue(sqs: Any, url: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    for _ in range(30):  # bounded
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        received += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return received


# --- the local image -----------------------------------------------------------------------------


def test_analyzer_image_is_registered_by_repository() -> None:
    assert image_repository(ANALYZER_IMAGE) == "sagemaker-model-monitor-analyzer"
    assert image_repository(ANALYZER_IMAGE + ":latest") == "sagemaker-model-monitor-analyzer"
    assert image_repository(
        "159807026194.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer@sha256:ab"
    ) == ("sagemaker-model-monitor-analyzer")
    assert image_repository("localhost:5000/team/tool:1.0") == "team/tool"
    was = model_monitor.installed()
    model_monitor.install()
    try:
        image = local_image("754476444466.dkr.ecr.ap-southeast-1.amazonaws.com/sagemaker-model-monitor-analyzer:v2")
        assert image is not None and image.command[-1].endswith("ml/monitor.py")
        assert local_image(SKLEARN_IMAGE) is None
    finally:
        if not was:
            model_monitor.uninstall()
            assert local_image(ANALYZER_IMAGE) is None


# --- baselining ------------------------------------------------------------------------------------


def test_baseline_job_with_the_analyzer_image_writes_statistics_and_constraints(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    frame = features(2000, seed=1)
    name, constraints_uri, statistics_uri = baseline_job(aws, frame)

    job = sm.describe_processing_job(ProcessingJobName=name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ExitMessage"] == "Completed: Job completed successfully with no violations."
    assert keys(s3, "baseline/results/") == ["baseline/results/constraints.json", "baseline/results/statistics.json"]

    stats = get_json(s3, statistics_uri)
    assert stats["version"] == 0.0 and stats["dataset"] == {"item_count": 2000}
    by_name = {f["name"]: f for f in stats["features"]}
    assert list(by_name) == FEATURES
    assert by_name["tenure_months"]["inferred_type"] == "Integral"
    charges = by_name["monthly_charges"]
    assert charges["inferred_type"] == "Fractional"
    numeric = charges["numerical_statistics"]
    present = int(frame["monthly_charges"].notna().sum())
    assert numeric["common"] == {"num_present": present, "num_missing": 2000 - present}
    assert present < 2000  # datagen blanks ~0.5 %
    assert numeric["mean"] == pytest.approx(frame["monthly_charges"].mean())
    assert numeric["sum"] == pytest.approx(frame["monthly_charges"].sum())
    assert numeric["std_dev"] == pytest.approx(frame["monthly_charges"].std(ddof=0))
    assert (numeric["min"], numeric["max"]) == (frame["monthly_charges"].min(), frame["monthly_charges"].max())
    kll = numeric["distribution"]["kll"]
    assert len(kll["buckets"]) == 10
    assert sum(b["count"] for b in kll["buckets"]) == present
    assert kll["buckets"][0]["lower_bound"] == numeric["min"] and kll["buckets"][-1]["upper_bound"] == numeric["max"]
    widths = {round(b["upper_bound"] - b["lower_bound"], 9) for b in kll["buckets"]}
    assert len(widths) == 1  # equal width
    assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
    assert kll["sketch"]["data"][0] == sorted(frame["monthly_charges"].dropna().tolist())  # n <= 2048: exact
    contract = by_name["contract"]
    assert contract["inferred_type"] == "String"
    assert contract["string_statistics"]["distinct_count"] == 3.0
    buckets = {b["value"]: b["count"] for b in contract["string_statistics"]["distribution"]["categorical"]["buckets"]}
    assert buckets == frame["contract"].value_counts().to_dict()

    constraints = get_json(s3, constraints_uri)
    cby = {f["name"]: f for f in constraints["features"]}
    assert cby["tenure_months"]["completeness"] == 1.0
    assert cby["tenure_months"]["num_constraints"] == {"is_non_negative": True}
    assert 0.95 <= cby["monthly_charges"]["completeness"] < 1.0  # lower bound of the observed share
    assert cby["contract"]["string_constraints"]["domains"] == ["month-to-month", "one-year", "two-year"]
    assert constraints["monitoring_config"] == {
        "evaluate_constraints": "Enabled",
        "emit_metrics": "Enabled",
        "datatype_check_threshold": 0.1,
        "domain_content_threshold": 0.1,
        "distribution_constraints": {
            "perform_comparison": "Enabled",
            "comparison_threshold": 0.1,
            "comparison_method": "Robust",
            "categorical_comparison_threshold": 0.1,
            "categorical_drift_method": "LInfinity",
        },
    }


# --- schedules -------------------------------------------------------------------------------------


def test_monitoring_schedule_crud_and_validation(aws: dict[str, Any]) -> None:
    sm = aws["sm"]
    endpoint(sm, "churn-crud")
    constraints, statistics = f"s3://{BUCKET}/b/constraints.json", f"s3://{BUCKET}/b/statistics.json"
    arn = schedule(sm, "churn-crud-dq", "churn-crud", constraints, statistics)
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:monitoring-schedule/churn-crud-dq"

    described = sm.describe_monitoring_schedule(MonitoringScheduleName="churn-crud-dq")
    assert described["MonitoringScheduleStatus"] == "Scheduled"
    assert described["MonitoringType"] == "DataQuality"
    assert described["EndpointName"] == "churn-crud"
    assert described["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == "churn-crud-dq-def"
    assert "LastMonitoringExecutionSummary" not in described

    # the older inline form (ModelMonitor.create_monitoring_schedule)
    sm.create_monitoring_schedule(
        MonitoringScheduleName="churn-crud-inline",
        MonitoringScheduleConfig={
            "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
            "MonitoringJobDefinition": {
                "BaselineConfig": {"ConstraintsResource": {"S3Uri": constraints}},
                "MonitoringInputs": [
                    {"EndpointInput": {"EndpointName": "churn-crud", "LocalPath": "/opt/ml/processing/input/endpoint"}}
                ],
                "MonitoringOutputConfig": {
                    "MonitoringOutputs": [{"S3Output": {"S3Uri": REPORTS, "LocalPath": "/opt/ml/processing/output"}}]
                },
                "MonitoringResources": {
                    "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}
                },
                "MonitoringAppSpecification": {"ImageUri": ANALYZER_IMAGE},
                "RoleArn": ROLE,
            },
        },
    )
    listed = sm.list_monitoring_schedules(EndpointName="churn-crud", SortBy="Name", SortOrder="Ascending")
    assert [s["MonitoringScheduleName"] for s in listed["MonitoringScheduleSummaries"]] == [
        "churn-crud-dq",
        "churn-crud-inline",
    ]
    assert listed["MonitoringScheduleSummaries"][0]["MonitoringJobDefinitionName"] == "churn-crud-dq-def"
    assert [
        s["MonitoringScheduleName"]
        for s in sm.list_monitoring_schedules(NameContains="inline")["MonitoringScheduleSummaries"]
    ] == ["churn-crud-inline"]
    assert sm.list_monitoring_schedules(EndpointName="other")["MonitoringScheduleSummaries"] == []
    page = sm.list_monitoring_schedules(MaxResults=1)
    assert len(page["MonitoringScheduleSummaries"]) == 1 and page["NextToken"]
    assert (
        len(sm.list_monitoring_schedules(MaxResults=1, NextToken=page["NextToken"])["MonitoringScheduleSummaries"]) == 1
    )
    assert sm.list_monitoring_executions(MonitoringScheduleName="churn-crud-dq")["MonitoringExecutionSummaries"] == []

    sm.stop_monitoring_schedule(MonitoringScheduleName="churn-crud-inline")
    assert (
        sm.describe_monitoring_schedule(MonitoringScheduleName="churn-crud-inline")["MonitoringScheduleStatus"]
        == "Stopped"
    )
    sm.start_monitoring_schedule(MonitoringScheduleName="churn-crud-inline")

    with pytest.raises(ClientError) as dup:
        schedule_config = {"MonitoringJobDefinitionName": "churn-crud-dq-def", "MonitoringType": "DataQuality"}
        sm.create_monitoring_schedule(MonitoringScheduleName="churn-crud-dq", MonitoringScheduleConfig=schedule_config)
    assert dup.value.response["Error"]["Code"] == "ResourceInUse"

    with pytest.raises(ClientError) as other_type:
        sm.create_monitoring_schedule(
            MonitoringScheduleName="churn-crud-mq",
            MonitoringScheduleConfig={
                "MonitoringJobDefinitionName": "churn-crud-dq-def",
                "MonitoringType": "ModelQuality",
            },
        )
    assert other_type.value.response["Error"]["Code"] == "ValidationException"
    assert "only 'DataQuality'" in other_type.value.response["Error"]["Message"]

    with pytest.raises(ClientError) as unknown_definition:
        sm.create_monitoring_schedule(
            MonitoringScheduleName="churn-crud-x",
            MonitoringScheduleConfig={"MonitoringJobDefinitionName": "nope", "MonitoringType": "DataQuality"},
        )
    assert "nope" in unknown_definition.value.response["Error"]["Message"]

    sm.delete_monitoring_schedule(MonitoringScheduleName="churn-crud-dq")
    with pytest.raises(ClientError) as gone:
        sm.describe_monitoring_schedule(MonitoringScheduleName="churn-crud-dq")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFound"
    remaining = sm.list_monitoring_schedules()["MonitoringScheduleSummaries"]
    assert [s["MonitoringScheduleName"] for s in remaining] == ["churn-crud-inline"]


# --- executions ------------------------------------------------------------------------------------


def test_clean_capture_completes_without_violations(aws: dict[str, Any]) -> None:
    s3, sm, cw = aws["s3"], aws["sm"], aws["cw"]
    _, constraints, statistics = baseline_job(aws, features(3000, seed=1))
    endpoint(sm, "churn-clean")
    schedule(sm, "churn-clean-dq", "churn-clean", constraints, statistics)
    write_capture(s3, "churn-clean", features(1500, seed=2))
    # outside the window: a drifted hour that must not be read
    write_capture(s3, "churn-clean", features(500, seed=3, drift=3.0), hour=WINDOW_END, files=1)

    job_name = model_monitor.run_monitoring_now("churn-clean-dq", WINDOW_START, WINDOW_END)

    assert job_name.startswith("model-monitoring-202405010300-")
    job = sm.describe_processing_job(ProcessingJobName=job_name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ExitMessage"] == "Completed: Job completed successfully with no violations."
    assert job["AppSpecification"]["ImageUri"] == ANALYZER_IMAGE
    assert job["Environment"]["sagemaker_monitoring_schedule_name"] == "churn-clean-dq"
    assert (job["Environment"]["start_time"], job["Environment"]["end_time"]) == (
        "2024-05-01T02:00:00Z",
        "2024-05-01T03:00:00Z",
    )
    captured = [i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"] if i["InputName"].startswith("input_")]
    assert captured == [f"{CAPTURE}/churn-clean/AllTraffic/2024/05/01/02"]

    summary = execution(sm, "churn-clean-dq")
    assert summary["MonitoringExecutionStatus"] == "Completed"
    assert summary["ProcessingJobArn"] == job["ProcessingJobArn"]
    assert summary["ScheduledTime"] == WINDOW_END
    assert summary["EndpointName"] == "churn-clean" and summary["MonitoringType"] == "DataQuality"
    last = sm.describe_monitoring_schedule(MonitoringScheduleName="churn-clean-dq")["LastMonitoringExecutionSummary"]
    assert last["MonitoringExecutionStatus"] == "Completed"

    prefix = report_prefix("churn-clean", "churn-clean-dq")
    assert keys(s3, prefix + "/") == [f"{prefix}/constraint_violations.json", f"{prefix}/statistics.json"]
    assert violations_of(s3, "churn-clean", "churn-clean-dq") == []
    current = get_json(s3, f"s3://{BUCKET}/{prefix}/statistics.json")
    assert current["dataset"]["item_count"] == 1500  # only the window's hour was read

    for feature in FEATURES:
        drift = metric(cw, f"feature_baseline_drift_{feature}", "churn-clean", "churn-clean-dq")
        assert drift is not None and 0.0 <= drift < 0.1, (feature, drift)
        assert metric(cw, f"feature_non_null_{feature}", "churn-clean", "churn-clean-dq") is not None
    assert metric(cw, "feature_data_age", "churn-clean", "churn-clean-dq", "SampleCount") == 1500


def test_drifted_capture_reports_violations_metrics_and_the_job_event(aws: dict[str, Any]) -> None:
    s3, sm, cw = aws["s3"], aws["sm"], aws["cw"]
    sqs, queue = event_queue()
    _, constraints, statistics = baseline_job(aws, features(10_000, seed=1))
    endpoint(sm, "churn-drift")
    schedule(sm, "churn-drift-dq", "churn-drift", constraints, statistics)
    write_capture(s3, "churn-drift", features(5000, seed=4, drift=1.0))

    job_name = model_monitor.run_monitoring_now("churn-drift-dq", WINDOW_START, WINDOW_END)

    summary = execution(sm, "churn-drift-dq")
    assert summary["MonitoringExecutionStatus"] == "CompletedWithViolations"
    job = sm.describe_processing_job(ProcessingJobName=job_name)
    assert job["ProcessingJobStatus"] == "Completed"  # the processing status has no "WithViolations"
    violations = violations_of(s3, "churn-drift", "churn-drift-dq")
    assert (
        job["ExitMessage"] == f"CompletedWithViolations: Job completed successfully with {len(violations)} violations."
    )
    drifted = drift_by_feature(violations)
    # datagen's documented shifts at drift=1: charges +12, usage x1.5, tenure scale /1.4, contract mix
    assert {"monthly_charges", "data_usage_gb", "tenure_months", "contract"} <= set(drifted)
    assert "region" not in drifted  # region never drifts
    for feature, (distance, threshold) in drifted.items():
        assert distance > threshold == 0.1
        assert metric(cw, f"feature_baseline_drift_{feature}", "churn-drift", "churn-drift-dq") == pytest.approx(
            distance
        )
    region_drift = metric(cw, "feature_baseline_drift_region", "churn-drift", "churn-drift-dq")
    assert region_drift is not None and region_drift < 0.1

    events = [e for e in drain_queue(sqs, queue) if e["detail"]["ProcessingJobName"] == job_name]
    assert [e["detail"]["ProcessingJobStatus"] for e in events] == ["InProgress", "Completed"]
    assert events[-1]["detail"]["ExitMessage"].startswith("CompletedWithViolations:")
    # Like AWS's sample of the event, no Environment: DescribeProcessingJob has it.
    assert "Environment" not in events[-1]["detail"]
    assert job["Environment"]["sagemaker_monitoring_schedule_name"] == "churn-drift-dq"


def test_missing_column_is_a_violation_and_a_truncated_capture_fails(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    _, constraints, statistics = baseline_job(aws, features(2000, seed=1))
    endpoint(sm, "churn-cols")
    schedule(sm, "churn-cols-dq", "churn-cols", constraints, statistics)

    # decision: rows with fewer fields than the baseline has features -> missing_column_check
    write_capture(s3, "churn-cols", features(600, seed=5).drop(columns=["region"]))
    model_monitor.run_monitoring_now("churn-cols-dq", WINDOW_START, WINDOW_END)
    assert execution(sm, "churn-cols-dq")["MonitoringExecutionStatus"] == "CompletedWithViolations"
    violations = violations_of(s3, "churn-cols", "churn-cols-dq")
    missing = [v for v in violations if v["constraint_check_type"] == "missing_column_check"]
    assert [v["feature_name"] for v in missing] == ["region"]
    assert (
        "Number of columns in current dataset: 7, Number of columns in baseline constraints: 8"
        in missing[0]["description"]
    )
    assert not [v for v in violations if v["constraint_check_type"] == "baseline_drift_check"]

    # decision: a capture line that is not valid JSON fails the execution, naming file and line
    sm.delete_monitoring_schedule(MonitoringScheduleName="churn-cols-dq")
    schedule(sm, "churn-trunc-dq", "churn-cols", constraints, statistics)
    later = WINDOW_END + dt.timedelta(hours=5)
    written = write_capture(s3, "churn-cols", features(600, seed=6), hour=later - dt.timedelta(hours=1), truncate=True)
    job_name = model_monitor.run_monitoring_now("churn-trunc-dq", later - dt.timedelta(hours=1), later)
    summary = execution(sm, "churn-trunc-dq")
    assert summary["MonitoringExecutionStatus"] == "Failed"
    assert summary["ProcessingJobArn"].endswith(job_name)
    reason = summary["FailureReason"]
    assert "not valid JSON" in reason and "truncated or corrupt" in reason
    assert written[-1].rsplit("/", 1)[-1] in reason and "line 100" in reason
    assert sm.describe_processing_job(ProcessingJobName=job_name)["ProcessingJobStatus"] == "Failed"


def test_execution_failures_without_data_or_capture(aws: dict[str, Any]) -> None:
    sm = aws["sm"]
    _, constraints, statistics = baseline_job(aws, features(500, seed=1))
    endpoint(sm, "churn-empty")
    schedule(sm, "churn-empty-dq", "churn-empty", constraints, statistics)
    job_name = model_monitor.run_monitoring_now("churn-empty-dq", WINDOW_START, WINDOW_END)  # no capture at all
    summary = execution(sm, "churn-empty-dq")
    assert summary["MonitoringExecutionStatus"] == "Failed"
    assert "Job inputs had no data" in summary["FailureReason"]
    assert sm.describe_processing_job(ProcessingJobName=job_name)["ProcessingJobStatus"] == "Failed"

    endpoint(sm, "churn-nocap", capture=False)
    schedule(sm, "churn-nocap-dq", "churn-nocap", constraints, statistics)
    with pytest.raises(model_monitor.MonitoringError, match="no data capture"):
        model_monitor.run_monitoring_now("churn-nocap-dq", WINDOW_START, WINDOW_END)
    failed = execution(sm, "churn-nocap-dq")
    assert failed["MonitoringExecutionStatus"] == "Failed" and "ProcessingJobArn" not in failed
    with pytest.raises(model_monitor.MonitoringError, match="Could not find monitoring schedule"):
        model_monitor.run_monitoring_now("no-such-schedule")
    with pytest.raises(model_monitor.MonitoringError, match="not before"):
        model_monitor.run_monitoring_now("churn-empty-dq", WINDOW_END, WINDOW_START)


def test_calibrated_constraints_flag_a_scale_shift_the_default_misses(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    baseline = features(40_000, seed=1)
    _, constraints, statistics = baseline_job(aws, baseline, prefix="big")

    # calibrate.py as a script-mode processing job of the scikit-learn container
    for name in ("calibrate.py", "monitor.py", "autoloop_ml_common.py"):  # the script and what it imports
        s3.put_object(Bucket=BUCKET, Key=f"code/ml/{name}", Body=(REPO / "ml" / name).read_bytes())
    calibration = "calibrate-big"
    sm.create_processing_job(
        ProcessingJobName=calibration,
        RoleArn=ROLE,
        AppSpecification={
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/calibrate.py"],
            "ContainerArguments": [
                "--baseline-dir",
                "/opt/ml/processing/input/baseline",
                "--constraints",
                "/opt/ml/processing/input/constraints/constraints.json",
                "--output-dir",
                "/opt/ml/processing/output",
                "--sample-size",
                "20000",
                "--draws",
                "30",
                "--seed",
                "7",
            ],  # fmt: skip
        },
        ProcessingInputs=[
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/code/ml/",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "baseline",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/big/data/",
                    "LocalPath": "/opt/ml/processing/input/baseline",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "constraints",
                "S3Input": {
                    "S3Uri": constraints,
                    "LocalPath": "/opt/ml/processing/input/constraints",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "calibrated",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/calibrated",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}
        },
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    finished(calibration)
    described = sm.describe_processing_job(ProcessingJobName=calibration)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    report = get_json(s3, f"s3://{BUCKET}/calibrated/calibration.json")
    assert report["features"]["monthly_charges"]["threshold"] < 0.1
    calibrated = f"s3://{BUCKET}/calibrated/constraints.json"

    # the same large window, monthly_charges scaled x1.5 around its mean (nothing else changes)
    current = features(20_000, seed=2)
    mean = baseline["monthly_charges"].mean()
    current["monthly_charges"] = (mean + 1.5 * (current["monthly_charges"] - mean)).round(2)
    endpoint(sm, "churn-scale")
    schedule(sm, "churn-scale-default", "churn-scale", constraints, statistics)
    schedule(sm, "churn-scale-calibrated", "churn-scale", calibrated, statistics)
    write_capture(s3, "churn-scale", current)

    model_monitor.run_monitoring_now("churn-scale-default", WINDOW_START, WINDOW_END)
    model_monitor.run_monitoring_now("churn-scale-calibrated", WINDOW_START, WINDOW_END)

    assert execution(sm, "churn-scale-default")["MonitoringExecutionStatus"] == "Completed"
    assert violations_of(s3, "churn-scale", "churn-scale-default") == []
    assert execution(sm, "churn-scale-calibrated")["MonitoringExecutionStatus"] == "CompletedWithViolations"
    drifted = drift_by_feature(violations_of(s3, "churn-scale", "churn-scale-calibrated"))
    assert set(drifted) == {"monthly_charges"}
    distance, threshold = drifted["monthly_charges"]
    assert threshold == report["features"]["monthly_charges"]["threshold"]
    assert threshold < distance < 0.1  # missed at the default 0.1, flagged when calibrated



def test_update_monitoring_schedule_keeps_the_schedule_and_validates(aws: dict[str, Any]) -> None:
    sm = aws["sm"]
    endpoint(sm, "churn-upd")
    constraints, statistics = f"s3://{BUCKET}/b/constraints.json", f"s3://{BUCKET}/b/statistics.json"
    arn = schedule(sm, "churn-upd-dq", "churn-upd", constraints, statistics)
    config = sm.describe_monitoring_schedule(MonitoringScheduleName="churn-upd-dq")["MonitoringScheduleConfig"]
    config["ScheduleConfig"]["ScheduleExpression"] = "cron(0 0 ? * * *)"
    assert sm.update_monitoring_schedule(MonitoringScheduleName="churn-upd-dq",
                                         MonitoringScheduleConfig=config)["MonitoringScheduleArn"] == arn
    updated = sm.describe_monitoring_schedule(MonitoringScheduleName="churn-upd-dq")
    assert updated["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 0 ? * * *)"
    with pytest.raises(ClientError):
        sm.update_monitoring_schedule(MonitoringScheduleName="churn-upd-dq",
                                      MonitoringScheduleConfig={**config, "MonitoringType": "ModelQuality"})
    kept = sm.describe_monitoring_schedule(MonitoringScheduleName="churn-upd-dq")
    assert kept["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 0 ? * * *)"


def test_an_inline_schedule_describes_as_the_sdks_attach_reads_it(aws: dict[str, Any]) -> None:
    """DefaultModelMonitor.attach reads NetworkConfig's two flags with [] and lists the tags."""
    sm = aws["sm"]
    endpoint(sm, "churn-attach")
    arn = sm.create_monitoring_schedule(
        MonitoringScheduleName="churn-attach-dq",
        MonitoringScheduleConfig={
            "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
            "MonitoringJobDefinition": {
                "BaselineConfig": {"ConstraintsResource": {"S3Uri": f"s3://{BUCKET}/b/constraints.json"}},
                "MonitoringInputs": [{"EndpointInput": {
                    "EndpointName": "churn-attach", "LocalPath": "/opt/ml/processing/input/endpoint"}}],
                "MonitoringOutputConfig": {
                    "MonitoringOutputs": [{"S3Output": {"S3Uri": REPORTS, "LocalPath": "/opt/ml/processing/output"}}]
                },
                "MonitoringResources": {
                    "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}
                },
                "MonitoringAppSpecification": {"ImageUri": ANALYZER_IMAGE},
                "NetworkConfig": {"EnableNetworkIsolation": True},  # the encryption flag left out, as Autoloop does
                "RoleArn": ROLE,
            },
        },
        Tags=[{"Key": "autoloop:model", "Value": "churn"}],
    )["MonitoringScheduleArn"]
    network = sm.describe_monitoring_schedule(MonitoringScheduleName="churn-attach-dq")[
        "MonitoringScheduleConfig"]["MonitoringJobDefinition"]["NetworkConfig"]
    assert network == {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": False}
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "autoloop:model", "Value": "churn"}]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "ml"}])
    assert {t["Key"] for t in sm.list_tags(ResourceArn=arn)["Tags"]} == {"autoloop:model", "team"}
    with pytest.raises(ClientError) as missing:
        sm.list_tags(ResourceArn=arn.replace("churn-attach-dq", "nope"))
    assert "Could not find monitoring-schedule with name nope" in missing.value.response["Error"]["Message"]

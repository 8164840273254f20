"""The drift handler against moto: report -> policy -> notification -> retrain."""

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from autoloop import errors
from autoloop.config import DriftSettings, load_settings
from autoloop.drift_steps import handle_drift
from autoloop_cli.datagen import generate
from tests.conftest import EVENTS, load_event
from tests.handlers.conftest import STACK
from tests.support import record_processing_job

REPORT = (EVENTS / "constraint_violations_sample.json").read_bytes()


@pytest.fixture
def drift(deployed):
    deployed.use_env("DriftHandlerFunction")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=deployed.data_bucket, Key="incoming/churn/latest.csv",
                  Body=generate(300, seed=1).to_csv(index=False).encode())
    prefix = f"monitoring/{STACK}-churn/{STACK}-churn-dq/2026/11/01/03"
    s3.put_object(Bucket=deployed.artifacts_bucket, Key=f"{prefix}/constraint_violations.json", Body=REPORT)
    event = load_event("sagemaker_monitoring_job_completed")
    event["detail"]["Environment"]["sagemaker_endpoint_name"] = f"{STACK}-churn"
    event["detail"]["Environment"]["sagemaker_monitoring_schedule_name"] = f"{STACK}-churn-dq"
    for output in event["detail"]["ProcessingOutputConfig"]["Outputs"]:
        output["S3Output"]["S3Uri"] = f"s3://{deployed.artifacts_bucket}/{prefix}"
    return event, load_settings(DriftSettings)


def run(event, settings, **kwargs):
    return handle_drift(record_processing_job(event), settings, **kwargs)


def executions(deployed):
    return boto3.client("stepfunctions").list_executions(
        stateMachineArn=deployed.outputs["TrainingPipelineArn"])["executions"]


def test_violations_notify_and_start_one_retrain_with_the_drift_context(deployed, drift):
    event, settings = drift
    result = run(event, settings)
    assert result["retrain"] is True and result["violations"] == 3
    [execution] = executions(deployed)
    payload = json.loads(boto3.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"])["input"])
    assert payload["trigger"]["type"] == "drift"
    assert payload["trigger"]["detail"]["report"] == result["report"]
    assert payload["source"]["key"] == "incoming/churn/latest.csv" and payload["source"]["version_id"]
    [note] = deployed.notifications()
    assert note["Subject"] == "Autoloop: drift detected"
    for feature in ("monthly_charges", "data_usage_gb"):
        assert feature in note["Message"]
    assert "Retraining: run" in note["Message"]


def test_a_flapping_trigger_gives_one_retrain_within_the_cooldown(deployed, drift):
    event, settings = drift
    now = datetime.now(UTC)
    outcomes = [run(event, settings, now=now + timedelta(minutes=10 * i))["retrain"] for i in range(5)]
    assert outcomes == [True, False, False, False, False]
    assert len(executions(deployed)) == 1
    later = run(event, settings, now=now + timedelta(seconds=settings.drift_cooldown_seconds + 60))
    assert later["retrain"] is False and "already running" in later["reason"]


def test_events_for_unknown_endpoints_are_refused(deployed, drift):
    event, settings = drift
    event["detail"]["Environment"]["sagemaker_endpoint_name"] = "someone-else"
    with pytest.raises(errors.InvalidEvent, match="does not serve"):
        run(event, settings)
    assert executions(deployed) == []


@pytest.mark.parametrize("body", [None, b"", b'{"violations": [', b'{"no": "violations"}'])
def test_missing_or_malformed_reports_change_nothing(deployed, drift, body):
    event, settings = drift
    uri = event["detail"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, prefix = uri[5:].split("/", 1)
    key = f"{prefix}/constraint_violations.json"
    if body is None:
        boto3.client("s3").delete_object(Bucket=bucket, Key=key)
    else:
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    with pytest.raises(errors.InvalidViolationsReport):
        run(event, settings)
    assert executions(deployed) == []


def test_an_unreadable_report_is_notified_with_its_reason(deployed, drift):
    event, settings = drift
    uri = event["detail"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, prefix = uri[5:].split("/", 1)
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/constraint_violations.json", Body=b"{")
    with pytest.raises(errors.InvalidViolationsReport):
        run(event, settings)
    [note] = deployed.notifications()
    assert note["Subject"] == "Autoloop: drift check failed"
    assert "InvalidViolationsReport" in note["Message"] and "constraint_violations.json" in note["Message"]
    assert "Nothing was retrained" in note["Message"]
    assert executions(deployed) == []


def test_an_alarm_that_is_not_in_alarm_is_ignored(deployed, drift):
    _, settings = drift
    event = load_event("cloudwatch_alarm_drift")
    event["detail"]["state"]["value"] = "OK"
    assert "is OK" in handle_drift(event, settings)["ignored"]


def test_a_pipeline_processing_job_is_described_and_ignored(deployed, drift):
    """The rule sends every completed processing job; the job's own description says it is not
    a monitoring execution, so nothing is read, notified or retrained."""
    _, settings = drift
    event = load_event("sagemaker_processing_job_completed")
    event["detail"]["Environment"] = {}
    assert run(event, settings) == {"ignored": "not a monitoring job"}
    assert executions(deployed) == [] and deployed.notifications() == []


def test_a_failed_processing_job_is_ignored_without_a_lookup(deployed, drift):
    _, settings = drift
    event = load_event("sagemaker_processing_job_failed")  # no such job in moto: describing it would raise
    assert "is Failed" in handle_drift(event, settings)["ignored"]

import json

import boto3
import pytest

from autoloop.naming import run_id
from tests.conftest import load_event, load_handler


@pytest.fixture
def start(deployed):
    deployed.use_env("StartPipelineFunction")
    return load_handler("start_pipeline").handler


def s3_event(deployed, key="incoming/churn/2026-11/customers.csv", version="v1"):
    event = load_event("s3_object_created")
    event["detail"]["bucket"]["name"] = deployed.data_bucket
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["version-id"] = version
    event["account"], event["region"] = "123456789012", "us-east-1"  # the stack's (moto's) account and region
    return event


def executions(deployed):
    return boto3.client("stepfunctions").list_executions(
        stateMachineArn=deployed.outputs["TrainingPipelineArn"]
    )["executions"]


def test_upload_starts_one_execution_named_by_the_object(deployed, start, lambda_context):
    result = start(s3_event(deployed), lambda_context)
    expected = run_id("churn", deployed.data_bucket, "incoming/churn/2026-11/customers.csv", "v1")
    assert result == {"started": True, "run_id": expected, "execution_arn": result["execution_arn"]}
    [execution] = executions(deployed)
    assert execution["name"] == expected
    payload = json.loads(boto3.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"])["input"])
    assert payload["model"] == "churn"
    assert payload["source"]["key"] == "incoming/churn/2026-11/customers.csv"
    assert payload["source"]["version_id"] == "v1"


def test_duplicate_events_start_nothing_new(deployed, start, lambda_context):
    first = start(s3_event(deployed), lambda_context)
    for _ in range(5):
        again = start(s3_event(deployed), lambda_context)
        assert again["started"] is False or again["run_id"] == first["run_id"]
    assert len(executions(deployed)) == 1


def test_a_new_version_of_the_same_key_is_a_new_run(deployed, start, lambda_context):
    a = start(s3_event(deployed, version="v1"), lambda_context)
    b = start(s3_event(deployed, version="v2"), lambda_context)
    assert a["run_id"] != b["run_id"]
    assert len(executions(deployed)) == 2


def test_a_duplicate_of_a_failed_run_starts_nothing_but_a_reupload_does(deployed, start, lambda_context):
    first = start(s3_event(deployed), lambda_context)
    boto3.client("stepfunctions").stop_execution(executionArn=first["execution_arn"], error="Test")
    duplicate = start(s3_event(deployed), lambda_context)
    assert duplicate == {"started": False, "duplicate": True, "run_id": first["run_id"], "status": "ABORTED"}
    reupload = start(s3_event(deployed, version="v2"), lambda_context)
    assert reupload["started"] is True and reupload["run_id"] != first["run_id"]


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda e: e["detail"]["object"].__setitem__("key", "exports/x.csv"), "ObjectOutsideIncoming"),
        (lambda e: e["detail"]["object"].__setitem__("key", "incoming/x.csv"), "ObjectOutsideIncoming"),
        # the drift handler's datasets: an upload there starts nothing (the S3 rule matches incoming/ only)
        (lambda e: e["detail"]["object"].__setitem__("key", "retrain/churn/x.csv"), "ObjectOutsideIncoming"),
        (lambda e: e["detail"].pop("bucket"), "InvalidEvent"),
        (lambda e: e.__setitem__("detail-type", "Object Deleted"), "InvalidEvent"),
        (lambda e: e["detail"]["bucket"].__setitem__("name", "someone-elses-bucket"), "InvalidEvent"),
    ],
)
def test_bad_events_start_nothing_and_notify_the_reason(deployed, start, lambda_context, mutate, error):
    event = s3_event(deployed)
    mutate(event)
    result = start(event, lambda_context)
    assert result["started"] is False and result["error"] == error
    assert executions(deployed) == []
    [note] = deployed.notifications()
    assert note["Subject"] == "Autoloop: upload rejected"
    assert json.loads(note["Message"])["error"] == error

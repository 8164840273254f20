"""Handler requests at the limits: the longest model name, source keys users really upload.

The stack already has the longest name the template accepts (conftest), and every request
is checked against the service model (conftest's autouse fixture); these tests drive the
requests that the other handler tests do not reach with such values: StartExecution for
odd keys, the refusal of a key whose URI SageMaker cannot take, SendTaskSuccess/Failure
(the other tests stand a fake in for Step Functions) and the run-slot queue's UpdateItem.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest

from autoloop import naming, tasks
from autoloop.jobs import job_result
from tests.conftest import load_event, load_handler
from tests.contract.test_request_patterns import KEYS, LONG_MODEL, TOO_LONG_KEY
from tests.handlers.conftest import STACK
from tests.request_rules import recording


def s3_event(deployed, key: str) -> dict:
    event = load_event("s3_object_created")
    event["detail"]["bucket"]["name"] = deployed.data_bucket
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["version-id"] = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    event["account"], event["region"] = "123456789012", "us-east-1"
    return event


def test_uploads_with_any_key_start_a_run_with_a_valid_execution_name(deployed, lambda_context):
    assert len(STACK) == naming.MAX_STACK_NAME
    deployed.use_env("StartPipelineFunction")
    start = load_handler("start_pipeline").handler
    with recording() as recorder:
        results = [start(s3_event(deployed, f"{key}"), lambda_context) for key in KEYS]
    assert [r["started"] for r in results] == [True] * len(KEYS)
    started = [r for r in recorder.requests if r.method == "start_execution"]
    assert len(started) == len(KEYS) and recorder.violations() == []
    for request, key in zip(started, KEYS, strict=True):
        assert json.loads(request.params["input"])["source"]["key"] == key


def test_a_key_whose_uri_sagemaker_cannot_take_is_refused_before_any_run(deployed, lambda_context):
    deployed.use_env("StartPipelineFunction")
    with recording() as recorder:
        result = load_handler("start_pipeline").handler(s3_event(deployed, TOO_LONG_KEY), lambda_context)
    assert result["started"] is False and result["error"] == "InvalidEvent"
    assert "S3 URIs of at most 1024" in result["reason"] and "shorter key" in result["reason"]
    assert "start_execution" not in {r.method for r in recorder.requests}
    [notice] = deployed.notifications()
    assert json.loads(notice["Message"])["reason"] == result["reason"]


def make_job(deployed, name: str, reason: str | None = None) -> dict:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_processing_job(
        ProcessingJobName=name, RoleArn=deployed.outputs["SageMakerExecutionRoleArn"],
        AppSpecification={"ImageUri": "img"},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
    )
    description = dict(sagemaker.describe_processing_job(ProcessingJobName=name))
    if reason is not None:
        description |= {"ProcessingJobStatus": "Failed", "FailureReason": reason}
    return description


@pytest.fixture
def moto_task_callbacks():
    """moto's plain Step Functions backend (no execution engine here) takes SendTaskFailure
    without a cause; the local AWS's sfn_callbacks patch, which keeps the cause for the
    engine's backend, is off for this test if an earlier module installed it."""
    from localaws.stepfunctions import callbacks

    was_installed = callbacks.installed()
    callbacks.uninstall()
    yield
    if was_installed:
        callbacks.install()


@pytest.mark.parametrize("reason", [None, "x" * 40_000], ids=["completed", "failed-with-a-long-reason"])
def test_task_results_fit_send_task_success_and_failure(deployed, moto_task_callbacks, reason):
    run = naming.run_id(LONG_MODEL, deployed.data_bucket, KEYS[0], "v", attempt=99)
    name = naming.job_name(run, "calibrate")
    description = make_job(deployed, name, reason)
    with recording() as recorder:
        result = tasks.complete_job_task("token-" + "t" * 2000, "processing", description)
    assert result.items() >= job_result("processing", description).items()
    [sent] = [r for r in recorder.requests if r.service == "stepfunctions"]
    assert sent.method == ("send_task_success" if reason is None else "send_task_failure")
    assert recorder.violations() == []


def test_the_run_slot_queue_names_attributes_by_the_longest_execution(deployed):
    from autoloop import run_slots

    table = deployed.resources["RunSlotsTable"]
    run = naming.run_id(LONG_MODEL, deployed.data_bucket, KEYS[0], "v", attempt=99)
    with recording() as recorder:
        answer = run_slots.queue_for_slot({"execution": run, "started": datetime.now(UTC).isoformat(),
                                           "state_machine": deployed.outputs["TrainingPipelineArn"],
                                           "model": LONG_MODEL}, table)
    assert answer["holds_slot"] is False
    assert "update_item" in {r.method for r in recorder.requests} and recorder.violations() == []
